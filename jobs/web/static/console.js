// Live progress: elements with data-poll are refreshed from the API every two seconds
// while a run is unfinished; the job list keeps looking (every ten seconds) for jobs
// submitted since it was drawn and adds their rows. No framework, nothing loaded from elsewhere.
(function () {
  "use strict";
  const FINAL = new Set(["completed", "cancelled"]);

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  // A row like the template's, built from the API's job (text only: no markup from data).
  function jobRow(job) {
    const row = document.createElement("tr");
    row.dataset.job = String(job.id);
    const link = document.createElement("a");
    link.href = "/jobs/" + job.id;
    link.textContent = String(job.id);
    const first = document.createElement("td");
    first.appendChild(link);
    row.appendChild(first);
    row.appendChild(cell(job.name));
    row.appendChild(cell(job.created_at + " by " + job.submitted_by));
    const state = cell(job.run ? "run " + job.run.number + ": " + job.run.state : "");
    state.className = "run-state";
    row.appendChild(state);
    const progress = document.createElement("td");
    if (job.run) {
      const bar = document.createElement("progress");
      bar.className = "run-progress";
      bar.setAttribute("aria-label", "job " + job.id + " progress");
      const count = document.createElement("span");
      count.className = "run-count";
      progress.append(bar, " ", count);
    }
    row.appendChild(progress);
    return row;
  }

  function paint(row, run) {
    if (!row || !run) return;
    const bar = row.querySelector(".run-progress");
    const count = row.querySelector(".run-count");
    const state = row.querySelector(".run-state");
    if (bar) { bar.max = run.total; bar.value = run.finished; bar.textContent = run.finished + "/" + run.total; }
    if (count) count.textContent = run.finished + " / " + run.total;
    if (state) state.textContent = state.textContent.includes("run ") ? "run " + run.number + ": " + run.state : run.state;
    for (const cell of row.querySelectorAll("[data-state]")) {
      cell.textContent = String(run.counts[cell.dataset.state] || 0);
    }
  }

  async function poll(element) {
    let unfinished = true;
    try {
      const response = await fetch(element.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const body = await response.json();
      const jobs = body.jobs || [body];
      unfinished = false;
      const tableBody = element.tBodies ? element.tBodies[0] : null;
      for (const job of jobs.slice().reverse()) {  // oldest first, so new rows stack on top
        let row = element.dataset.job ? element : element.querySelector('[data-job="' + job.id + '"]');
        if (!row && tableBody) {
          row = jobRow(job);
          tableBody.insertBefore(row, tableBody.firstChild);
        }
        paint(row, job.run);
        if (job.run && !FINAL.has(job.run.state)) unfinished = true;
      }
    } finally {
      if (unfinished) setTimeout(() => poll(element), 2000);
      else if (!element.dataset.job) setTimeout(() => poll(element), 10000);
    }
  }

  // A cited timestamp or a "play from" button starts the recording there.
  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-seek]");
    const player = document.getElementById("player");
    if (!target || !player) return;
    player.currentTime = Number(target.dataset.seek);
    player.play().catch(() => {});
  });

  document.addEventListener("DOMContentLoaded", () => {
    for (const element of document.querySelectorAll("[data-poll]")) setTimeout(() => poll(element), 2000);
  });
})();

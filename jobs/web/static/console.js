// Live progress: elements with data-poll are refreshed from the API every two seconds
// while a run is unfinished. No framework, nothing loaded from elsewhere.
(function () {
  "use strict";
  const FINAL = new Set(["completed", "cancelled"]);

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
      for (const job of jobs) {
        const row = element.dataset.job ? element : element.querySelector('[data-job="' + job.id + '"]');
        paint(row, job.run);
        if (job.run && !FINAL.has(job.run.state)) unfinished = true;
      }
    } finally {
      if (unfinished) setTimeout(() => poll(element), 2000);
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

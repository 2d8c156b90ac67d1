// The calls item page: the transcript line under the playhead is highlighted, and a click (or
// Enter) on a line plays the call from that line's start. Bound again after htmx swaps.
"use strict";

(() => {
  function bind(scope) {
    const player = scope.querySelector("audio[data-call-audio]");
    if (!player || player.dataset.bound) return;
    player.dataset.bound = "1";
    const lines = [...scope.querySelectorAll(".transcript tr[data-start]")];
    const highlight = () => {
      const now = player.currentTime;
      for (const line of lines) {
        const on = now >= Number(line.dataset.start) && now < Number(line.dataset.end);
        if (on && !line.classList.contains("playing")) line.scrollIntoView({ block: "nearest" });
        line.classList.toggle("playing", on);
      }
    };
    const playFrom = (line) => {
      player.currentTime = Number(line.dataset.start);
      player.play().catch(() => {});
    };
    player.addEventListener("timeupdate", highlight);
    player.addEventListener("seeked", highlight);
    for (const line of lines) {
      line.tabIndex = 0;
      line.addEventListener("click", () => playFrom(line));
      line.addEventListener("keydown", (event) => {
        if (event.key === "Enter") playFrom(line);
      });
    }
  }
  document.addEventListener("DOMContentLoaded", () => bind(document));
  document.addEventListener("htmx:afterSwap", (event) => bind(event.target));
  if (document.readyState !== "loading") bind(document);
})();

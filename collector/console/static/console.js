// traceedge console: progressive enhancement only; every page works without it.
// A form whose button carries data-confirm asks before it is sent (stop and lift orders).
document.addEventListener("submit", function (ev) {
  var b = ev.submitter || ev.target.querySelector("button[data-confirm]");
  if (b && b.dataset && b.dataset.confirm && !window.confirm(b.dataset.confirm)) {
    ev.preventDefault();
  }
});

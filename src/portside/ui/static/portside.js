// Portside's own script: small conveniences over pages that work without it.
// Copy buttons: <button data-copy="ID"> copies the value (or text) of the element ID.
(function () {
  "use strict";

  function copyFrom(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var text = "value" in source ? source.value : source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectAndCopy(source); done(); });
    } else {
      selectAndCopy(source);
      done();
    }
  }

  function selectAndCopy(source) {
    if (source.select) { source.select(); }
    try { document.execCommand("copy"); } catch (ignored) { /* the text stays selected */ }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (button) { event.preventDefault(); copyFrom(button); }
  });

  // Focus moves to the new content after htmx swaps a page in, as a page load would.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail && event.detail.boosted) {
      var main = document.getElementById("main");
      if (main) main.focus({ preventScroll: true });
    }
  });
})();

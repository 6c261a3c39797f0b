// Settings pages: copy a read-only field (the webhook URL, a verify token) and show or hide a secret.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var field = document.getElementById(copy.dataset.copy);
      if (!field) return;
      var done = function () {
        var text = copy.textContent;
        copy.textContent = copy.dataset.copiedText || text;
        setTimeout(function () { copy.textContent = text; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done);
      } else {  // plain http: select the text, so Ctrl-C copies it
        var type = field.type;
        field.type = "text";
        field.select();
        if (document.execCommand && document.execCommand("copy")) done();
        field.type = type;
      }
      return;
    }
    var reveal = event.target.closest("[data-reveal]");
    if (reveal) {
      var secret = document.getElementById(reveal.dataset.reveal);
      if (!secret) return;
      var shown = secret.type === "text";
      secret.type = shown ? "password" : "text";
      if (!reveal.dataset.showText) reveal.dataset.showText = reveal.textContent;
      reveal.textContent = shown ? reveal.dataset.showText : reveal.dataset.hideText;
      reveal.setAttribute("aria-pressed", shown ? "false" : "true");
    }
  });
})();

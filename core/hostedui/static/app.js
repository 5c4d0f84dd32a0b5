// Progressive enhancement for the hosted pages: everything works without this script; it
// only adds a copy-to-clipboard button to the recovery codes.
"use strict";
document.querySelectorAll("[data-copy]").forEach(function (button) {
  var target = document.getElementById(button.getAttribute("data-copy"));
  if (!target || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var text = Array.prototype.map.call(target.querySelectorAll("code"), function (c) {
      return c.textContent;
    }).join("\n") + "\n";
    navigator.clipboard.writeText(text).then(function () {
      var note = document.getElementById("copied");
      if (note) {
        note.hidden = false;
      }
    });
  });
});

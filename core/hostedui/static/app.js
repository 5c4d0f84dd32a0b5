// Progressive enhancement for the hosted pages: the forms work without this script; it adds
// a copy-to-clipboard button to the recovery codes and reads sign-in links' fragments.
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

// A sign-in link carries its code in the URL fragment, which never reaches the server: copy it
// into the form, and take it out of the address bar and history.
document.querySelectorAll("[data-from-fragment]").forEach(function (input) {
  if (location.hash.length > 1) {
    input.value = decodeURIComponent(location.hash.slice(1));
    history.replaceState(null, "", location.pathname + location.search);
  }
});

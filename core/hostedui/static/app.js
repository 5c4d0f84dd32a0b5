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

// Emailed links carry their secret in the URL fragment, which never reaches a server: a sign-in
// link its whole fragment, a password-reset or email-verification link its token=... parameter
// (data-from-fragment="token"). Copy it into the form, and take it out of the address bar and
// history.
document.querySelectorAll("[data-from-fragment]").forEach(function (input) {
  if (location.hash.length > 1) {
    var key = input.getAttribute("data-from-fragment");
    var fragment = location.hash.slice(1);
    input.value = key ? (new URLSearchParams(fragment).get(key) || "") : decodeURIComponent(fragment);
    history.replaceState(null, "", location.pathname + location.search);
  }
});

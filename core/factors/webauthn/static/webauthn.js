// The hosted passkey steps. A form with data-mode="create" or "get" carries the ceremony's
// options (the MFA step, where the core generated them with the page); a form with
// data-first="signin", "signup" or "recover" asks the FDI for them (the sign-in, sign-up and
// account recovery pages). The
// browser's WebAuthn API answers the options, and the answer is posted with the form. On the
// sign-in page the browser also offers the tenant's passkeys in the email field's autofill
// (conditional mediation). Without JavaScript the buttons stay disabled and the page says why.
(function () {
  "use strict";

  function buffer(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    var bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function text(buf) {
    if (!buf) return undefined;
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (c) { return { type: c.type, id: buffer(c.id), transports: c.transports }; });
  }
  // answer is the credential as JSON (WebAuthn's toJSON where the browser has it).
  function answer(cred) {
    if (cred.toJSON) return cred.toJSON();
    var r = cred.response, out = { id: cred.id, rawId: text(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults(), authenticatorAttachment: cred.authenticatorAttachment };
    if (r.attestationObject) {
      out.response = { clientDataJSON: text(r.clientDataJSON), attestationObject: text(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : [] };
    } else {
      out.response = { clientDataJSON: text(r.clientDataJSON), authenticatorData: text(r.authenticatorData),
        signature: text(r.signature), userHandle: text(r.userHandle) };
    }
    return out;
  }
  function create(o) {
    return navigator.credentials.create({ publicKey: {
      rp: o.rp, user: { id: buffer(o.user.id), name: o.user.name, displayName: o.user.displayName },
      challenge: buffer(o.challenge), pubKeyCredParams: o.pubKeyCredParams, timeout: o.timeout,
      excludeCredentials: descriptors(o.excludeCredentials), authenticatorSelection: o.authenticatorSelection,
      attestation: o.attestation } });
  }
  function get(o, extra) {
    var req = { publicKey: { challenge: buffer(o.challenge), rpId: o.rpId, timeout: o.timeout,
      userVerification: o.userVerification, allowCredentials: descriptors(o.allowCredentials) } };
    for (var k in extra || {}) req[k] = extra[k];
    return navigator.credentials.get(req);
  }
  function submit(form, o, cred) {
    form.elements.optionsId.value = o.webauthnGeneratedOptionsId;
    form.elements.credential.value = JSON.stringify(answer(cred));
    form.submit();
  }
  function say(status, msg) {
    if (!status) return;
    status.hidden = !msg;
    status.textContent = msg || "";
  }
  function failure(err) {
    if (err && err.name === "InvalidStateError") return "This device already has a passkey for this account.";
    if (err && err.message && err.status) return err.message;
    return "The passkey was not used. Try again, or use another way.";
  }
  // fetchOptions asks the FDI for a ceremony's options.
  function fetchOptions(form, kind, body) {
    var url = "/auth/" + encodeURIComponent(form.dataset.tenant) + "/webauthn/options/" + kind;
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}) }).then(function (r) { return r.json(); }).then(function (o) {
      if (o.status !== "OK") {
        var e = new Error(o.status === "INVALID_EMAIL_ERROR" ? "Enter a valid email address first."
          : o.status === "RECOVER_ACCOUNT_TOKEN_INVALID_ERROR" ? "This link has expired or was used already. Ask for a new one."
          : (o.message || o.status));
        e.status = o.status;
        throw e;
      }
      return o;
    });
  }

  var supported = !!window.PublicKeyCredential;

  // The MFA step: the options are in the page.
  var step = document.getElementById("passkey-form");
  if (step) {
    var button = document.getElementById("passkey"), status = document.getElementById("passkey-status");
    if (!supported) return say(status, "This browser does not support passkeys. Use another method.");
    var o = JSON.parse(step.dataset.options);
    button.disabled = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      say(status, "");
      (step.dataset.mode === "create" ? create(o) : get(o)).then(function (cred) { submit(step, o, cred); },
        function (err) { button.disabled = false; say(status, failure(err)); });
    });
  }

  // The sign-in and sign-up pages: the options come from the FDI.
  var first = document.getElementById("passkey-first");
  if (first) {
    var firstButton = document.getElementById("passkey-first-button"), firstStatus = document.getElementById("passkey-status");
    if (!supported) return say(firstStatus, "This browser does not support passkeys.");
    firstButton.disabled = false;
    var autofill = null;
    if (first.dataset.first === "signin" && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) return;
        autofill = new AbortController();
        return fetchOptions(first, "signin").then(function (o) {
          return get(o, { mediation: "conditional", signal: autofill.signal }).then(function (cred) { submit(first, o, cred); });
        });
      }).catch(function () { /* the button still works */ });
    }
    firstButton.addEventListener("click", function () {
      if (autofill) autofill.abort();
      firstButton.disabled = true;
      say(firstStatus, "");
      var ceremony;
      if (first.dataset.first === "recover") {
        ceremony = fetchOptions(first, "register", { recoverAccountToken: first.elements.token.value }).then(function (o) {
          return create(o).then(function (cred) { submit(first, o, cred); });
        });
      } else if (first.dataset.first === "signup") {
        var email = document.getElementById(first.dataset.emailField || "email");
        ceremony = fetchOptions(first, "register", { email: email ? email.value : "" }).then(function (o) {
          return create(o).then(function (cred) { submit(first, o, cred); });
        });
      } else {
        ceremony = fetchOptions(first, "signin").then(function (o) {
          return get(o).then(function (cred) { submit(first, o, cred); });
        });
      }
      ceremony.catch(function (err) { firstButton.disabled = false; say(firstStatus, failure(err)); });
    });
  }
})();

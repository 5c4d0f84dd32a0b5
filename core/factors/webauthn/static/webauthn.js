// The hosted passkey steps: the form carries the options the core generated for this
// ceremony; the browser's WebAuthn API answers them, and the answer is posted with the form.
// Without JavaScript the button stays disabled and the page says why.
(function () {
  "use strict";
  var form = document.getElementById("passkey-form");
  var button = document.getElementById("passkey");
  var status = document.getElementById("passkey-status");
  if (!form || !button || !window.PublicKeyCredential) {
    if (status) {
      status.hidden = false;
      status.textContent = "This browser does not support passkeys. Use another method.";
    }
    return;
  }

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

  var o = JSON.parse(form.dataset.options);
  button.disabled = false;
  button.addEventListener("click", function () {
    button.disabled = true;
    status.hidden = true;
    var ceremony;
    if (form.dataset.mode === "create") {
      ceremony = navigator.credentials.create({ publicKey: {
        rp: o.rp, user: { id: buffer(o.user.id), name: o.user.name, displayName: o.user.displayName },
        challenge: buffer(o.challenge), pubKeyCredParams: o.pubKeyCredParams, timeout: o.timeout,
        excludeCredentials: descriptors(o.excludeCredentials), authenticatorSelection: o.authenticatorSelection,
        attestation: o.attestation } });
    } else {
      ceremony = navigator.credentials.get({ publicKey: {
        challenge: buffer(o.challenge), rpId: o.rpId, timeout: o.timeout, userVerification: o.userVerification,
        allowCredentials: descriptors(o.allowCredentials) } });
    }
    ceremony.then(function (cred) {
      form.elements.optionsId.value = o.webauthnGeneratedOptionsId;
      form.elements.credential.value = JSON.stringify(answer(cred));
      form.submit();
    }, function (err) {
      button.disabled = false;
      status.hidden = false;
      status.textContent = err && err.name === "InvalidStateError"
        ? "This device already has a passkey for your account."
        : "The passkey was not used. Try again, or use another method.";
    });
  });
})();

// Rempart passkey ceremonies: login, enrolment through a one-time link, recovery.
// Served from this origin only (the CSP forbids inline scripts). No password is ever asked.
"use strict";

(function () {
  function toBase64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 1) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(value) {
    const padded = value.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((value.length + 3) % 4);
    const text = atob(padded);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
    return bytes.buffer;
  }

  function creationOptions(json) {
    const options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.user = Object.assign({}, json.user, { id: fromBase64url(json.user.id) });
    options.excludeCredentials = (json.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: fromBase64url(c.id) });
    });
    return options;
  }

  function requestOptions(json) {
    const options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.allowCredentials = (json.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: fromBase64url(c.id) });
    });
    return options;
  }

  function registrationJSON(credential) {
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toBase64url(credential.response.clientDataJSON),
        attestationObject: toBase64url(credential.response.attestationObject),
        transports: credential.response.getTransports ? credential.response.getTransports() : [],
      },
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    };
  }

  function authenticationJSON(credential) {
    const response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        authenticatorData: toBase64url(response.authenticatorData),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : undefined,
      },
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    };
  }

  async function postJSON(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      throw new Error(data.detail || data.title || "La demande a échoué / The request failed");
    }
    return data;
  }

  function say(text, isError) {
    const status = document.getElementById("status");
    if (!status) return;
    status.textContent = text;
    status.className = isError ? "error" : "";
  }

  async function login(form) {
    const loginName = form.elements.login.value;
    const started = await postJSON("/api/v1/auth/login/options", { login: loginName });
    const credential = await navigator.credentials.get({ publicKey: requestOptions(started.publicKey) });
    const signedIn = await postJSON("/api/v1/auth/login/verify", {
      ceremony_id: started.ceremony_id,
      credential: authenticationJSON(credential),
    });
    document.body.dataset.signedIn = signedIn.account_id;
    const next = form.dataset.next || "/";
    window.location.assign(next.charAt(0) === "/" && next.charAt(1) !== "/" ? next : "/");
  }

  async function enrol(form, token) {
    const started = await postJSON("/api/v1/auth/enrolment/options", { token: token });
    const credential = await navigator.credentials.create({ publicKey: creationOptions(started.publicKey) });
    const signedIn = await postJSON("/api/v1/auth/enrolment/verify", {
      token: token,
      ceremony_id: started.ceremony_id,
      credential: registrationJSON(credential),
      name: form.elements.name.value,
    });
    // The link is spent: drop it from the address bar and the history.
    history.replaceState(null, "", window.location.pathname);
    document.body.dataset.signedIn = signedIn.account_id;
    say("Passkey créée, vous êtes connecté / Passkey created, you are signed in", false);
  }

  async function recover(form) {
    const answer = await postJSON("/api/v1/auth/recovery", {
      login: form.elements.login.value,
      code: form.elements.code.value,
    });
    window.location.assign("/enrol#" + encodeURIComponent(answer.enrolment_token));
  }

  function wire(id, handler) {
    const form = document.getElementById(id);
    if (!form) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say("…", false);
      handler(form).catch(function (error) { say(error.message, true); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential) {
      say("Ce navigateur ne gère pas les passkeys / This browser does not support passkeys", true);
      return;
    }
    wire("login-form", login);
    wire("recovery-form", recover);
    wire("enrol-form", function (form) {
      const token = decodeURIComponent(window.location.hash.slice(1));
      if (!token) return Promise.reject(new Error("Lien incomplet / Incomplete link"));
      return enrol(form, token);
    });
  });
})();

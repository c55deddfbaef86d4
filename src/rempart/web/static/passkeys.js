// Rempart passkey ceremonies: login, enrolment through a one-time link (then the recovery codes,
// shown once), recovery, step-up, and adding a passkey from the account's page.
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

  // The page's language decides the words; the server's own details stay in English in the logs.
  const WORDS = {
    fr: {
      working: "Un instant…",
      failed: "La demande a échoué. Rechargez la page et réessayez.",
      unsupported: "Ce navigateur ne gère pas les passkeys. Utilisez un navigateur récent ou votre téléphone.",
      cancelled: "La passkey n'a pas été utilisée (annulé ou délai dépassé). Réessayez.",
      loginFailed: "Connexion refusée : vérifiez l'identifiant et utilisez la passkey de ce compte.",
      tooMany: "Trop de tentatives. Patientez quelques minutes avant de réessayer.",
      ceremony: "La passkey n'a pas pu être vérifiée. Réessayez.",
      badLink: "Ce lien est incomplet, déjà utilisé ou expiré. Demandez un nouveau lien à votre administrateur.",
      recoveryFailed: "Code refusé : vérifiez l'identifiant et le code.",
      csrf: "Le jeton de sécurité de la page est périmé. Rechargez la page.",
      signedOut: "Votre session est terminée : reconnectez-vous.",
      enrolled: "Passkey créée, vous êtes connecté.",
      codesFailed: "Passkey créée, vous êtes connecté. Les codes de secours n'ont pas pu être créés : faites-les depuis « Mon compte », page Codes de secours.",
      signedIn: "Connecté. Redirection…",
      confirmed: "Confirmé. Redirection…",
      added: "Passkey ajoutée.",
      stepUp: "Confirmation par passkey nécessaire. Redirection…",
      conflict: "Cette passkey est déjà enregistrée, ou la limite de passkeys est atteinte.",
    },
    en: {
      working: "One moment…",
      failed: "The request failed. Reload the page and try again.",
      unsupported: "This browser does not support passkeys. Use a recent browser or your phone.",
      cancelled: "The passkey was not used (cancelled or timed out). Try again.",
      loginFailed: "Sign-in refused: check the login and use this account's passkey.",
      tooMany: "Too many attempts. Wait a few minutes before trying again.",
      ceremony: "The passkey could not be verified. Try again.",
      badLink: "This link is incomplete, already used or expired. Ask your administrator for a new one.",
      recoveryFailed: "Code refused: check the login and the code.",
      csrf: "The page's security token is stale. Reload the page.",
      signedOut: "Your session has ended: sign in again.",
      enrolled: "Passkey created, you are signed in.",
      codesFailed: "Passkey created, you are signed in. The recovery codes could not be made: make them from “My account”, Recovery codes page.",
      signedIn: "Signed in. Redirecting…",
      confirmed: "Confirmed. Redirecting…",
      added: "Passkey added.",
      stepUp: "A fresh passkey check is needed. Redirecting…",
      conflict: "This passkey is already registered, or the limit of passkeys is reached.",
    },
  };
  const words = WORDS[document.documentElement.lang] || WORDS.fr;

  // What a refused request says, by its problem type (RFC 9457) and status.
  const BY_PROBLEM = {
    "login-failed": "loginFailed",
    "too-many-attempts": "tooMany",
    "slow-down": "tooMany",
    "passkey-ceremony-failed": "ceremony",
    "enrolment-refused": "badLink",
    "recovery-failed": "recoveryFailed",
    "csrf-refused": "csrf",
    "unauthenticated": "signedOut",
    "conflict": "conflict",
  };

  class Refused extends Error {
    constructor(status, slug) {
      super(words[BY_PROBLEM[slug]] || (status === 429 ? words.tooMany : words.failed));
      this.status = status;
      this.slug = slug;
    }
  }

  async function postJSON(path, body, csrf) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(body === undefined ? {} : body),
    });
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      throw new Refused(response.status, String(data.type || "").split("/").pop());
    }
    return data;
  }

  function say(text, isError) {
    const status = document.getElementById("status");
    if (!status) return;
    status.textContent = text;
    status.className = isError ? "notice bad" : "";
  }

  function explain(error) {
    if (error instanceof Refused) return error.message;
    // WebAuthn refusals: the person cancelled, the time ran out, or the device said no.
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) return words.cancelled;
    if (error && error.name === "InvalidStateError") return words.conflict;
    return words.failed;
  }

  function localPath(candidate) {
    return candidate && candidate.charAt(0) === "/" && candidate.charAt(1) !== "/" && candidate.indexOf("\\") < 0
      ? candidate
      : "/";
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
    say(words.signedIn, false);
    window.location.assign(localPath(form.dataset.next));
  }

  function showCodes(codes) {
    const section = document.getElementById("recovery-section");
    const list = document.getElementById("recovery-codes");
    if (!section || !list) return;
    list.replaceChildren();
    codes.forEach(function (code) {
      const item = document.createElement("li");
      const text = document.createElement("code");
      text.textContent = code;
      item.appendChild(text);
      list.appendChild(item);
    });
    section.hidden = false;
    const next = document.getElementById("recovery-continue");
    if (next) next.focus();
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
    form.remove(); // the link is spent (the hidden attribute would lose to form.stack's display rule)
    // The passkey was just used, so the account may make its recovery codes now (they need a
    // recent passkey); they are shown this once and never again.
    let answer;
    try {
      answer = await postJSON("/api/v1/me/recovery-codes", {}, signedIn.csrf_token);
    } catch (error) {
      say(words.codesFailed, true);
      return;
    }
    say(words.enrolled, false);
    showCodes(answer.codes || []);
  }

  async function recover(form) {
    const answer = await postJSON("/api/v1/auth/recovery", {
      login: form.elements.login.value,
      code: form.elements.code.value,
    });
    window.location.assign("/enrol#" + encodeURIComponent(answer.enrolment_token));
  }

  async function stepUp(form) {
    const csrf = form.dataset.csrf;
    const started = await postJSON("/api/v1/auth/step-up/options", {}, csrf);
    const credential = await navigator.credentials.get({ publicKey: requestOptions(started.publicKey) });
    await postJSON(
      "/api/v1/auth/step-up/verify",
      { ceremony_id: started.ceremony_id, credential: authenticationJSON(credential) },
      csrf,
    );
    say(words.confirmed, false);
    window.location.assign(localPath(form.dataset.next));
  }

  async function addPasskey(form) {
    const csrf = form.dataset.csrf;
    try {
      const started = await postJSON("/api/v1/me/passkeys/options", {}, csrf);
      const credential = await navigator.credentials.create({ publicKey: creationOptions(started.publicKey) });
      await postJSON(
        "/api/v1/me/passkeys",
        { ceremony_id: started.ceremony_id, credential: registrationJSON(credential), name: form.elements.name.value },
        csrf,
      );
    } catch (error) {
      if (error instanceof Refused && error.slug === "step-up-required") {
        say(words.stepUp, false);
        window.location.assign(localPath(form.dataset.stepUp));
        return;
      }
      throw error;
    }
    say(words.added, false);
    window.location.assign("/account/passkeys?done=added");
  }

  function wire(id, handler) {
    const form = document.getElementById(id);
    if (!form) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say(words.working, false);
      handler(form).catch(function (error) { say(explain(error), true); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wire("recovery-form", recover); // spends a code, needs no passkey on this device
    if (!window.PublicKeyCredential) {
      say(words.unsupported, true);
      return;
    }
    wire("login-form", login);
    wire("step-up-form", stepUp);
    wire("add-passkey-form", addPasskey);
    wire("enrol-form", function (form) {
      const token = decodeURIComponent(window.location.hash.slice(1));
      if (!token) return Promise.reject(new Refused(400, "enrolment-refused"));
      return enrol(form, token);
    });
  });
})();

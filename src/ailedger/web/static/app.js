// ailedger web app: sign-in (one-time link or browser wallet). Loaded by every page;
// no inline script anywhere (the Content-Security-Policy forbids it).
"use strict";

(function () {
  function show(id, text) {
    var el = document.getElementById(id);
    if (el) { el.textContent = text; el.hidden = false; }
  }

  async function postJson(url, body) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    var data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) { throw new Error(data.error || ("sign-in refused (" + response.status + ")")); }
    return data;
  }

  // A one-time link carries its code in the fragment (#code=...), which the browser never
  // sends to a server: read it, wipe it from the address bar and history, post it once.
  async function signInWithLink() {
    var match = /(?:^#|&)code=([A-Za-z0-9_-]+)/.exec(window.location.hash);
    if (!match) { return; }
    history.replaceState(null, "", window.location.pathname);
    show("link-status", "Signing in…");
    try {
      await postJson("/api/v1/auth/link", { code: match[1] });
      window.location.replace("/");
    } catch (err) {
      show("login-error", err.message);
    }
  }

  function toHex(text) {
    var bytes = new TextEncoder().encode(text);
    var hex = "0x";
    for (var i = 0; i < bytes.length; i++) { hex += bytes[i].toString(16).padStart(2, "0"); }
    return hex;
  }

  // EIP-4361 message, built exactly as the server parses it (web/siwe.py).
  function siweMessage(n, address) {
    var now = new Date();
    var later = new Date(now.getTime() + 5 * 60 * 1000);
    var stamp = function (d) { return d.toISOString().replace(/\.\d{3}Z$/, "Z"); };
    return [
      n.domain + " wants you to sign in with your Ethereum account:",
      address,
      "",
      n.statement,
      "",
      "URI: " + n.uri,
      "Version: 1",
      "Chain ID: " + n.chain_id,
      "Nonce: " + n.nonce,
      "Issued At: " + stamp(now),
      "Expiration Time: " + stamp(later),
    ].join("\n");
  }

  async function signInWithWallet() {
    try {
      var accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
      var response = await fetch("/api/v1/auth/nonce?address=" + encodeURIComponent(accounts[0]),
        { credentials: "same-origin" });
      var n = await response.json();
      if (!response.ok) { throw new Error(n.error || "no nonce"); }
      var message = siweMessage(n, n.address);
      var signature = await window.ethereum.request({
        method: "personal_sign", params: [toHex(message), accounts[0]],
      });
      await postJson("/api/v1/auth/siwe", { message: message, signature: signature });
      window.location.replace("/");
    } catch (err) {
      show("login-error", err.message || String(err));
    }
  }

  function start() {
    // A link opened while signed in lands here through /login's redirect, fragment kept.
    signInWithLink();
    if (!document.getElementById("link-status")) { return; }  // not the sign-in page
    if (window.ethereum) {
      var wallet = document.getElementById("wallet");
      wallet.hidden = false;
      document.getElementById("wallet-sign-in").addEventListener("click", signInWithWallet);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

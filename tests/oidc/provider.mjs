// A real OpenID provider (node's oidc-provider) for Traject's tests, on loopback only.
//
// Started by tests/oidc_provider.py: it prints one line "listening <issuer>" on stdout when ready
// and runs until killed. Accounts are fixed (ACCOUNTS below); the login page is a plain form that
// a test posts to programmatically: login=<account id>, mfa=1 for a second factor (then the ID
// token says amr ["pwd","mfa"] and acr https://refeds.org/profile/mfa, otherwise amr ["pwd"]).
// Clients: "traject" and "traject-other" (the wrong audience), both redirecting to the Flask test
// client's http://localhost/auth/oidc/callback; more (a live server's port) through dynamic
// registration at /reg.
import { generateKeyPairSync } from "node:crypto";
import http from "node:http";

import Provider from "oidc-provider";

const MFA_ACR = "https://refeds.org/profile/mfa";
const PWD_ACR = "urn:traject:test:pwd";

const ACCOUNTS = {
  "sub-opleider": { email: "sso.opleider@test.nl", name: "Sso Opleider", employee_number: "E1001" },
  "sub-aios": { email: "sso.aios@test.nl", name: "Sso Aios", employee_number: "E1002" },
  "sub-admin": { email: "sso.admin@test.nl", name: "Sso Admin", employee_number: "E1003" },
  "sub-newcomer": { email: "newcomer@test.nl", name: "New Comer", employee_number: "E1004" },
  "sub-invited": { email: "elsewhere@idp.test", name: "Invited Person", employee_number: "E1005" },
  "sub-unverified": { email: "sso.opleider@test.nl", email_verified: false, name: "Taker", employee_number: "E1099" },
};

const CALLBACK = "http://localhost/auth/oidc/callback";
const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret-which-is-long-enough`,
  redirect_uris: [CALLBACK],
  post_logout_redirect_uris: ["http://localhost/login"],
  grant_types: ["authorization_code"],
  response_types: ["code"],
});

function page(res, status, html) {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><title>Test IdP</title>${html}`);
}

async function body(req) {
  let data = "";
  for await (const chunk of req) data += chunk;
  return new URLSearchParams(data);
}

async function interaction(provider, req, res, uid, submit) {
  const details = await provider.interactionDetails(req, res);
  if (!submit) {
    return page(res, 200, `<form method="post" action="/interaction/${uid}/login">
      <input name="login"><label><input type="checkbox" name="mfa" value="1"> tweede factor</label>
      <button>Inloggen</button></form>`);
  }
  const form = await body(req);
  const accountId = details.prompt.name === "login" ? form.get("login") : details.session?.accountId;
  if (!ACCOUNTS[accountId]) return page(res, 400, "<p>unknown account</p>");
  const mfa = form.get("mfa") === "1";
  const grant = details.grantId ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const result = { consent: { grantId: await grant.save() } };
  if (details.prompt.name === "login") {
    result.login = { accountId, amr: mfa ? ["pwd", "mfa"] : ["pwd"], acr: mfa ? MFA_ACR : PWD_ACR };
  }
  return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const server = http.createServer();
server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [client("traject"), client("traject-other")],
    jwks: { keys: [{ ...privateKey.export({ format: "jwk" }), use: "sig", alg: "RS256" }] },
    cookies: { keys: ["traject-test-provider-cookie-key"] },
    pkce: { required: () => true },
    acrValues: [PWD_ACR, MFA_ACR],
    claims: { openid: ["sub", "acr", "amr", "auth_time"], email: ["email", "email_verified"], profile: ["name"], employee: ["employee_number"] },
    scopes: ["openid", "email", "profile", "employee"],
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    interactions: { url: (ctx, i) => `/interaction/${i.uid}` },
    findAccount: (ctx, id) => ACCOUNTS[id] && {
      accountId: id,
      claims: async () => ({ sub: id, email_verified: true, ...ACCOUNTS[id] }),
    },
  });
  const callback = provider.callback();
  server.on("request", (req, res) => {
    const match = req.url.match(/^\/interaction\/([^/?]+)(\/login)?/);
    if (!match) return callback(req, res);
    return interaction(provider, req, res, match[1], Boolean(match[2])).catch((err) => {
      page(res, 500, `<p>${String(err.message).replace(/</g, "&lt;")}</p>`);
    });
  });
  process.stdout.write(`listening ${issuer}\n`);
});

// Keiko's web client: passkey sign-up and login (navigator.credentials), recording an
// interaction, its anchoring live over graphql-transport-ws, the timeline, share links.
// Plain JavaScript, no build step. Tokens live in sessionStorage (gone with the tab).
"use strict";

// The GraphQL operations this page sends (validated against graphql/schema.graphql by
// gateway/tests/test_graphql_operations.py, like graphql/operations/*.graphql).
const OPS = {
  beginRegistration: `mutation BeginRegistration($email: String!, $displayName: String!) {
  beginRegistration(email: $email, displayName: $displayName) { id optionsJson }
}`,
  finishRegistration: `mutation FinishRegistration($id: ID!, $credential: String!, $name: String!) {
  finishRegistration(registrationId: $id, credentialJson: $credential, credentialName: $name) {
    user { id displayName }
    tokens { accessToken refreshToken accessExpiresAt }
  }
}`,
  beginLogin: `mutation BeginLogin($email: String!) {
  beginLogin(email: $email) { id optionsJson }
}`,
  finishLogin: `mutation FinishLogin($id: ID!, $credential: String!) {
  finishLogin(loginId: $id, credentialJson: $credential) {
    user { id displayName }
    tokens { accessToken refreshToken accessExpiresAt }
  }
}`,
  refreshTokens: `mutation RefreshTokens($refreshToken: String!) {
  refreshTokens(refreshToken: $refreshToken) { accessToken refreshToken accessExpiresAt }
}`,
  recordInteraction: `mutation RecordInteraction($input: InteractionInput!, $requestId: String) {
  recordInteraction(input: $input, requestId: $requestId) {
    id title anchor { status txHash blockNumber }
  }
}`,
  interactionAnchored: `subscription InteractionAnchored {
  interactionAnchored { statementId summary anchor { status txHash blockNumber failureReason } }
}`,
  timeline: `query Timeline($after: String) {
  passportTimeline(first: 50, after: $after) {
    edges { node { ...Group children { ...Group children { ...Group } } } }
    pageInfo { hasNextPage endCursor }
  }
}
fragment Group on TimelineGroup {
  level id title
  entries { statementId summary timestamp anchor { status txHash blockNumber } }
}`,
  createShareLink: `mutation CreateShareLink($input: CreateShareLinkInput!) {
  createShareLink(input: $input) { token url link { id label } }
}`,
};

const $ = (id) => document.getElementById(id);
const session = {
  get access() { return sessionStorage.getItem("keiko.access") || ""; },
  get refresh() { return sessionStorage.getItem("keiko.refresh") || ""; },
  get user() { return JSON.parse(sessionStorage.getItem("keiko.user") || "null"); },
  save(user, tokens) {
    if (user) sessionStorage.setItem("keiko.user", JSON.stringify(user));
    sessionStorage.setItem("keiko.access", tokens.accessToken);
    sessionStorage.setItem("keiko.refresh", tokens.refreshToken);
  },
};

function say(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.codes = errors.map((e) => (e.extensions || {}).code);
  }
}

async function post(query, variables, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const reply = await fetch("/graphql", {
    method: "POST", headers, body: JSON.stringify({ query, variables }),
  });
  const body = await reply.json();
  if (body.errors && body.errors.length) throw new GraphQLError(body.errors);
  return body.data;
}

// Calls as the signed-in user; an expired access token is refreshed once (rotation).
async function gql(query, variables = {}) {
  try {
    return await post(query, variables, session.access);
  } catch (err) {
    if (!(err instanceof GraphQLError) || !err.codes.includes("UNAUTHENTICATED") || !session.refresh) {
      throw err;
    }
    const data = await post(OPS.refreshTokens, { refreshToken: session.refresh });
    session.save(null, data.refreshTokens);
    return post(query, variables, session.access);
  }
}

// -- WebAuthn JSON <-> browser objects (PublicKeyCredential.parse*FromJSON when present) --

const b64url = {
  decode(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let raw = "";
    for (const b of bytes) raw += String.fromCharCode(b);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

function creationOptions(json) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    user: { ...json.user, id: b64url.decode(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
  };
}

function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
  };
}

function credentialJson(credential) {
  if (typeof credential.toJSON === "function") return JSON.stringify(credential.toJSON());
  const r = credential.response;
  const response = { clientDataJSON: b64url.encode(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = b64url.encode(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = b64url.encode(r.authenticatorData);
    response.signature = b64url.encode(r.signature);
    if (r.userHandle) response.userHandle = b64url.encode(r.userHandle);
  }
  return JSON.stringify({
    id: credential.id, rawId: b64url.encode(credential.rawId), type: credential.type,
    response, clientExtensionResults: credential.getClientExtensionResults(),
    authenticatorAttachment: credential.authenticatorAttachment,
  });
}

// -- account ---------------------------------------------------------------------------

async function signUp(event) {
  event.preventDefault();
  say("Creating your passkey…");
  try {
    const begun = (await post(OPS.beginRegistration, {
      email: $("signup-email").value.trim(), displayName: $("signup-name").value.trim(),
    })).beginRegistration;
    const options = creationOptions(JSON.parse(begun.optionsJson));
    const credential = await navigator.credentials.create({ publicKey: options });
    const done = (await post(OPS.finishRegistration, {
      id: begun.id, credential: credentialJson(credential), name: "web app passkey",
    })).finishRegistration;
    signedIn(done.user, done.tokens);
  } catch (err) {
    say(`Sign-up failed: ${err.message}`, true);
  }
}

async function logIn(event) {
  event.preventDefault();
  say("Waiting for your passkey…");
  try {
    const begun = (await post(OPS.beginLogin, { email: $("login-email").value.trim() })).beginLogin;
    const options = requestOptions(JSON.parse(begun.optionsJson));
    const credential = await navigator.credentials.get({ publicKey: options });
    const done = (await post(OPS.finishLogin, {
      id: begun.id, credential: credentialJson(credential),
    })).finishLogin;
    signedIn(done.user, done.tokens);
  } catch (err) {
    say(`Login failed: ${err.message}`, true);
  }
}

function signedIn(user, tokens) {
  session.save(user, tokens);
  showSignedIn();
  say(`Signed in as ${user.displayName}.`);
}

function showSignedIn() {
  const user = session.user;
  if (!user || !session.access) return;
  $("account").hidden = true;
  for (const id of ["record", "passport", "share"]) $(id).hidden = false;
  const who = $("whoami");
  who.hidden = false;
  who.textContent = `Signed in as ${user.displayName}`;
  watchAnchoring();
  loadTimeline();
}

// -- recording and live anchoring ------------------------------------------------------

function entryRow(id, label, anchor) {
  let row = document.querySelector(`li.entry[data-id="${CSS.escape(id)}"]`);
  if (!row) {
    row = document.createElement("li");
    row.className = "entry";
    row.dataset.id = id;
    row.innerHTML = '<span class="anchor-status"></span><span class="label"></span> <span class="tx"></span>';
    $("recorded").prepend(row);
  }
  if (label) row.querySelector(".label").textContent = label;
  row.dataset.status = anchor.status;
  row.querySelector(".anchor-status").textContent = anchor.status.toLowerCase();
  row.querySelector(".tx").textContent = anchor.txHash
    ? `block ${anchor.blockNumber}, tx ${anchor.txHash.slice(0, 14)}…`
    : "";
  return row;
}

async function record(event) {
  event.preventDefault();
  const input = {
    interactionType: $("record-type").value,
    title: $("record-title").value.trim(),
    content: $("record-content").value.trim() || null,
    response: $("record-response").value.trim() || null,
  };
  const score = $("record-score").value;
  if (score !== "") input.score = { scaled: Number(score) };
  say("Recording…");
  try {
    const recorded = (await gql(OPS.recordInteraction, {
      input, requestId: crypto.randomUUID(),
    })).recordInteraction;
    entryRow(recorded.id, recorded.title, recorded.anchor);
    say("Recorded and signed; waiting for its anchor on Keikochain…");
  } catch (err) {
    say(`Recording failed: ${err.message}`, true);
  }
}

let socket = null;

// graphql-transport-ws by hand: connection_init carries the access token.
function watchAnchoring() {
  if (socket) return;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  socket = new WebSocket(url, "graphql-transport-ws");
  socket.onopen = () => socket.send(JSON.stringify({
    type: "connection_init", payload: { Authorization: `Bearer ${session.access}` },
  }));
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "connection_ack") {
      document.body.dataset.live = "true";
      socket.send(JSON.stringify({
        id: "anchored", type: "subscribe", payload: { query: OPS.interactionAnchored },
      }));
    } else if (data.type === "ping") {
      socket.send(JSON.stringify({ type: "pong" }));
    } else if (data.type === "next" && data.payload.data) {
      const entry = data.payload.data.interactionAnchored;
      entryRow(entry.statementId, null, entry.anchor);
      say(`Anchored on Keikochain: ${entry.summary}`);
      loadTimeline();
    } else if (data.type === "error" || (data.type === "next" && data.payload.errors)) {
      say(`Live updates failed: ${JSON.stringify(data.payload)}`, true);
    }
  };
  socket.onclose = () => {
    document.body.dataset.live = "false";
    socket = null;
    if (session.access) setTimeout(watchAnchoring, 3000);  // reconnect
  };
}

// -- timeline and sharing --------------------------------------------------------------

const LEVELS = {
  COURSE: "Course", CLASS: "Class", TUTORIAL_SESSION: "Tutorial session",
  STUDY_SESSION: "Study session", UNSPECIFIED: "", UNGROUPED: "",
};

function renderGroup(group) {
  const section = document.createElement("section");
  section.className = "group";
  const heading = document.createElement("h3");
  const level = LEVELS[group.level] || "";
  heading.textContent = level && group.id ? `${level}: ${group.title}` : group.title;
  section.append(heading);
  const list = document.createElement("ol");
  for (const entry of group.entries) {
    const item = document.createElement("li");
    item.className = "entry";
    item.dataset.status = entry.anchor.status;
    item.textContent = `${entry.summary} · ${new Date(entry.timestamp).toLocaleString()} · ${entry.anchor.status.toLowerCase()}`;
    list.append(item);
  }
  if (group.entries.length) section.append(list);
  for (const child of group.children || []) section.append(renderGroup(child));
  return section;
}

async function loadTimeline() {
  try {
    const page = (await gql(OPS.timeline, { after: null })).passportTimeline;
    const target = $("timeline");
    target.replaceChildren(...page.edges.map((edge) => renderGroup(edge.node)));
    if (!page.edges.length) target.textContent = "Nothing recorded yet.";
  } catch (err) {
    say(`Could not load the timeline: ${err.message}`, true);
  }
}

async function share(event) {
  event.preventDefault();
  try {
    const created = (await gql(OPS.createShareLink, {
      input: { label: $("share-label").value.trim(), requestId: crypto.randomUUID() },
    })).createShareLink;
    $("share-url").textContent = created.url;
    $("share-url").href = created.url;
    $("open-verification").href = created.url;
    $("share-result").hidden = false;
    say("Share link created: anyone with it can verify your passport.");
  } catch (err) {
    say(`Sharing failed: ${err.message}`, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (!window.PublicKeyCredential) {
    say("This browser has no passkey support (WebAuthn).", true);
  }
  $("signup-form").addEventListener("submit", signUp);
  $("login-form").addEventListener("submit", logIn);
  $("record-form").addEventListener("submit", record);
  $("share-form").addEventListener("submit", share);
  $("refresh-timeline").addEventListener("click", loadTimeline);
  showSignedIn();
});

// WhisperCMS Desktop: the small scripts the screens need. Every action is a POST to this app's
// own wcms://localhost/api/…; nothing leaves the computer but a publish, which the backend does.
"use strict";

async function post_params(path, body) {
  // `Accept` tells the backend this is the script asking (a form the web view submits itself,
  // before this script listens, gets its answer as a page instead).
  const response = await fetch(path, { method: "POST", body, headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" } });
  if (!response.ok) throw new Error(await response.text());
  return response.json();
}

async function post_bytes(path, file) {
  const response = await fetch(path, { method: "POST", body: await file.arrayBuffer(), headers: { "Content-Type": "application/octet-stream", Accept: "application/json" } });
  if (!response.ok) throw new Error(await response.text());
  return response.json();
}

function status(text) {
  if (text) document.getElementById("status").textContent = text;
}

// Where a form shows its answer: its own `.result`, else its section's, else the page's.
function result_of(form) {
  return form.querySelector(".result") || (form.parentElement && form.parentElement.querySelector(".result")) || document.getElementById("result");
}

// Show an action's answer: `go` navigates, `fill` sets fields, `html` shows, `error` explains.
function answer_in(form, answer) {
  if (answer.go) {
    // The same page with another #anchor (e.g. /site#people) would only scroll: reload it.
    const target = new URL(answer.go, location.href);
    if (target.pathname === location.pathname && target.search === location.search) {
      history.replaceState(null, "", target.href);
      location.reload();
    } else {
      location.href = answer.go;
    }
    return;
  }
  const out = result_of(form);
  if (answer.fill) {
    for (const [name, value] of Object.entries(answer.fill)) {
      const field = form.querySelector(`[name="${name}"]`);
      if (field) field.value = value;
    }
  }
  if (answer.error) {
    if (out) { out.className = "result problems"; out.setAttribute("role", "alert"); out.textContent = answer.error; } else alert(answer.error);
  } else if (answer.html !== undefined && out) {
    out.className = "result"; out.innerHTML = answer.html;
  }
  status(answer.status);
}

// Every action form (`method="post"`, an `/api/…` action; a button's own `formaction` wins)
// posts without leaving the page and shows the answer. The editor and the publish form have
// their own handling below. A hidden `confirm` field is the question to ask first; the
// backend asks it itself when the form comes without this script.
for (const form of document.querySelectorAll("form[method=post]:not(#page):not(#publish)")) {
  const send = async (submitter) => {
    const question = form.elements.confirm;
    if (question && !confirm(question.value)) return;
    const body = new URLSearchParams(new FormData(form));
    body.delete("confirm");
    if (submitter && submitter.name) body.set(submitter.name, submitter.value);
    const path = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
    const out = result_of(form);
    if (out) { out.className = "result muted"; out.textContent = "Working…"; }
    try { answer_in(form, await post_params(path, body)); } catch (err) { answer_in(form, { error: err.message }); }
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); send(e.submitter); });
  if (form.dataset.submitOnChange !== undefined) form.addEventListener("change", () => send(null));
}

// The editor: every change kept on disk 400 ms after typing stops, the preview redrawn.
const page = document.getElementById("page");
if (page) {
  const saved = document.getElementById("saved");
  const preview = document.getElementById("preview");
  const body = document.getElementById("body");
  let timer = null;
  const keep = async () => {
    clearTimeout(timer);
    saved.textContent = "Keeping your changes…";
    try {
      const answer = await post_params("/api/page", new URLSearchParams(new FormData(page)));
      saved.textContent = "Kept at " + new Date().toLocaleTimeString() + ".";
      document.getElementById("problems").innerHTML = answer.problems;
      // The preview is another origin (wcms://preview): reload it by address, a new `_preview`
      // each time (the backend drops it before the site sees the request).
      preview.src = answer.url + (answer.url.includes("?") ? "&" : "?") + "_preview=" + Date.now();
      status(answer.status);
    } catch (e) {
      saved.textContent = "Not kept: " + e.message;
    }
  };
  page.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(keep, 400); });
  page.addEventListener("submit", (e) => { e.preventDefault(); keep(); });
  document.addEventListener("keydown", async (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "s") {
      e.preventDefault();
      await keep();
      const answer = await post_params("/api/save", new URLSearchParams({ message: "Edit " + page.dataset.path }));
      saved.textContent = answer.saved ? "Saved." : "Nothing new to save.";
      status(answer.status);
    }
  });
  // Pictures and files beside the page: kept first, then imported, then shown in the text.
  const upload = document.getElementById("upload");
  upload.addEventListener("change", async () => {
    await keep();
    for (const file of upload.files) {
      saved.textContent = "Adding " + file.name + "…";
      const path = page.dataset.path;
      try {
        const answer = await post_bytes(`/api/upload?page=${encodeURIComponent(path)}&name=${encodeURIComponent(file.name)}`, file);
        if (answer.error) { saved.textContent = answer.error; continue; }
        if (answer.page && answer.page !== path) {
          // The page became a bundle (same address): it is edited at its new path now.
          page.dataset.path = answer.page;
          page.querySelector('[name="path"]').value = answer.page;
          for (const field of document.querySelectorAll('.page-actions [name="path"]')) field.value = answer.page;
          history.replaceState(null, "", "/edit?path=" + encodeURIComponent(answer.page));
        }
        const at = body.selectionEnd;
        body.value = body.value.slice(0, at) + "\n" + answer.markdown + "\n" + body.value.slice(at);
        saved.textContent = file.name + (answer.resized ? " added (scaled down)." : " added.");
      } catch (err) {
        saved.textContent = "Not added: " + err.message;
      }
    }
    upload.value = "";
    await keep();
  });
}

// Media for the whole site.
const siteUpload = !page && document.getElementById("upload");
if (siteUpload) {
  siteUpload.addEventListener("change", async () => {
    const out = document.getElementById("upload-result");
    for (const file of siteUpload.files) {
      out.textContent = "Adding " + file.name + "…";
      try {
        const answer = await post_bytes(`/api/upload?name=${encodeURIComponent(file.name)}`, file);
        if (answer.error) { out.textContent = answer.error; return; }
      } catch (err) { out.textContent = "Not added: " + err.message; return; }
    }
    location.reload();
  });
}

// The page list: every row is data; only the rows in view are drawn (10,000 rows of HTML take
// a web view seconds), again as the list scrolls or the search changes.
const data = document.getElementById("pages-data");
if (data) {
  const all = JSON.parse(data.textContent);
  const list = document.getElementById("list");
  const find = document.getElementById("find");
  const count = document.getElementById("count");
  const scroller = document.getElementById("main");
  const ROW = 40; // px, the height of `.tree li` in app.css
  let shown = all;
  const badge = (cls, text, title) => {
    const b = document.createElement("span");
    b.className = "badge" + (cls ? " " + cls : "");
    b.textContent = text;
    if (title) b.title = title;
    return b;
  };
  const row = (p) => {
    const li = document.createElement("li");
    li.className = "depth-" + Math.min(p.d, 6);
    const a = document.createElement("a");
    a.href = "/edit?path=" + p.p;
    const t = document.createElement("span");
    t.className = "title";
    t.textContent = p.t;
    a.append(t);
    li.append(a);
    if (p.s) li.append(badge("section", "section"));
    if (p.r) li.append(badge("", "draft"));
    if (p.x) li.append(badge("problem", "problem", p.x));
    const path = document.createElement("span");
    path.className = "path";
    path.textContent = p.p;
    li.append(path);
    return li;
  };
  const spacer = (px) => {
    const li = document.createElement("li");
    li.className = "spacer";
    li.setAttribute("aria-hidden", "true");
    li.style.height = px + "px"; // CSSOM, which the CSP allows (style attributes it does not)
    return li;
  };
  let drawn = [-1, -1];
  const draw = (force) => {
    const top = Math.max(0, scroller.scrollTop - list.offsetTop);
    const first = Math.max(0, Math.floor(top / ROW) - 10);
    const last = Math.min(shown.length, first + Math.ceil(scroller.clientHeight / ROW) + 20);
    if (!force && drawn[0] === first && drawn[1] === last) return;
    drawn = [first, last];
    const rows = shown.slice(first, last).map(row);
    list.replaceChildren(spacer(first * ROW), ...rows, spacer((shown.length - last) * ROW));
  };
  const filter = () => {
    const q = find.value.trim().toLowerCase();
    shown = q ? all.filter((p) => p.t.toLowerCase().includes(q) || p.p.toLowerCase().includes(q)) : all;
    count.textContent = `${shown.length} of ${all.length} pages`;
    scroller.scrollTop = 0;
    draw(true);
  };
  let frame = 0;
  scroller.addEventListener("scroll", () => { cancelAnimationFrame(frame); frame = requestAnimationFrame(() => draw(false)); });
  window.addEventListener("resize", () => draw(true));
  find.addEventListener("input", filter);
  // Enter opens the first page found.
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    if (shown.length) location.href = "/edit?path=" + shown[0].p;
  });
  if (find.value) filter(); else draw(true);
}

// Publish, or send for review; Ctrl+Enter publishes from anywhere on the publish screen.
const publish = document.getElementById("publish");
if (publish) {
  const result = document.getElementById("result");
  const send = async (branch) => {
    result.textContent = branch === "main" ? "Publishing…" : "Sending for review…";
    const body = new URLSearchParams(new FormData(publish));
    body.set("branch", branch);
    try {
      const answer = await post_params("/api/publish", body);
      result.innerHTML = answer.html;
      // The message is in the history now; the next change gets its own.
      if (answer.saved) publish.elements.message.value = "";
      // What is left to publish now; the screen showed what there was before.
      const summary = document.getElementById("summary");
      if (summary && answer.summary !== undefined) summary.innerHTML = answer.summary;
      status(answer.status);
    } catch (err) {
      result.textContent = err.message;
    }
  };
  publish.addEventListener("submit", (e) => { e.preventDefault(); send(e.submitter ? e.submitter.value : "main"); });
  document.addEventListener("keydown", (e) => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); send("main"); } });
}

// A screen that showed before its status line was known asks for it now.
const statusLine = document.getElementById("status");
if (statusLine && statusLine.dataset.later !== undefined) {
  fetch("/api/status").then((r) => r.json()).then((a) => status(a.status)).catch(() => {});
}

// Ctrl+K finds a page.
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "k") {
    e.preventDefault();
    const find = document.getElementById("find");
    if (find) find.focus(); else location.href = "/pages";
  }
});

// Every listener is in place: the window test waits for this before it clicks.
document.body.dataset.ready = "";

// WhisperCMS Desktop: the small scripts the screens need. Every action is a POST to this app's
// own wcms://localhost/api/…; nothing leaves the computer but a publish, which the backend does.
"use strict";

async function post(path, form) {
  const body = new URLSearchParams(new FormData(form));
  return post_params(path, body);
}

async function post_params(path, body) {
  const response = await fetch(path, { method: "POST", body, headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  if (!response.ok) throw new Error(await response.text());
  return response.json();
}

function status(text) {
  if (text) document.getElementById("status").textContent = text;
}

// The editor: every change kept on disk 400 ms after typing stops, the preview redrawn.
const page = document.getElementById("page");
if (page) {
  const saved = document.getElementById("saved");
  const preview = document.getElementById("preview");
  let timer = null;
  const keep = async () => {
    saved.textContent = "Keeping your changes…";
    try {
      const answer = await post("/api/page", page);
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
      clearTimeout(timer);
      await keep();
      const answer = await post_params("/api/save", new URLSearchParams({ message: "Edit " + page.dataset.path }));
      saved.textContent = answer.saved ? "Saved." : "Nothing new to save.";
      status(answer.status);
    }
  });
}

// New page.
const newPage = document.getElementById("new-page");
if (newPage) {
  newPage.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { location.href = (await post("/api/new", newPage)).edit; } catch (err) { alert(err.message); }
  });
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
      status(answer.status);
    } catch (err) {
      result.textContent = err.message;
    }
  };
  publish.addEventListener("submit", (e) => { e.preventDefault(); send(e.submitter ? e.submitter.value : "main"); });
  document.addEventListener("keydown", (e) => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); send("main"); } });
}

// The first-run wizard.
const setup = document.getElementById("setup");
if (setup) {
  setup.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = new URLSearchParams(new FormData(setup));
    body.set("how", e.submitter ? e.submitter.value : "clone");
    const answer = await post_params("/api/setup", body);
    if (answer.go) location.href = answer.go;
    else alert(answer.error);
  });
}

// Ctrl+K finds a page.
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "k") {
    e.preventDefault();
    const find = document.getElementById("find");
    if (find) find.focus(); else location.href = "/pages";
  }
});

// Copy buttons: <button data-copy="input-id">. Everything works without this script.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const status = document.querySelector(".copied");
  try {
    await navigator.clipboard.writeText(field.value);
    const what = button.textContent.replace("Copy ", "");
    if (status) status.textContent = `${what[0].toUpperCase()}${what.slice(1)} copied.`;
  } catch {
    field.select();
    if (status) status.textContent = "Press Ctrl+C to copy the selected text.";
  }
});

// Generate buttons: <button data-generate="input-id"> fills in 48 random URL-safe characters.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-generate]");
  if (!button) return;
  const bytes = crypto.getRandomValues(new Uint8Array(36));
  const text = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
  document.getElementById(button.dataset.generate).value = text;
});

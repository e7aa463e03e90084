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

// Copy buttons: <button data-copy="input-id">. Everything works without this script.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const status = document.querySelector(".copied");
  try {
    await navigator.clipboard.writeText(field.value);
    if (status) status.textContent = `${button.textContent.replace("Copy ", "")} copied.`;
  } catch {
    field.select();
    if (status) status.textContent = "Press Ctrl+C to copy the selected text.";
  }
});

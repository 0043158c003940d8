// A second tap on a slow connection would send the form again. The server would answer it
// with the first answer (the form carries an Idempotency-Key); this just saves the trip.
for (const form of document.querySelectorAll("form[method='post']")) {
  form.addEventListener("submit", () => {
    for (const button of form.querySelectorAll("button[type='submit']")) {
      // After this event: a button disabled now would not be submitted.
      setTimeout(() => {
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
      }, 0);
    }
  });
}

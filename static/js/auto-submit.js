// Submits a form marked data-auto-submit as soon as the page loads (the hop to and from the bank).
document.querySelectorAll('form[data-auto-submit]').forEach(function (form) { form.submit(); });

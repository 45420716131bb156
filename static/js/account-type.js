// Shows only the fields of the chosen account type (individual or corporate).
// Without JavaScript every field stays visible and the server ignores the other type's fields.
(function () {
  const radios = document.querySelectorAll('input[name="account_type"]');
  if (!radios.length) return;
  function update() {
    const checked = document.querySelector('input[name="account_type"]:checked');
    const type = checked ? checked.value : 'individual';
    document.querySelectorAll('[data-account-type]').forEach(function (block) {
      block.hidden = block.dataset.accountType !== type;
    });
  }
  radios.forEach(function (radio) { radio.addEventListener('change', update); });
  update();
})();

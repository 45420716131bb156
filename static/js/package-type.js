// Shows the credits field for credit packages and the days field for subscriptions.
// Without JavaScript both stay visible; the server uses the one that matches the type.
(function () {
  const radios = document.querySelectorAll('input[name="type"]');
  if (!radios.length) return;
  function update() {
    const checked = document.querySelector('input[name="type"]:checked');
    const type = checked ? checked.value : 'credit';
    document.querySelectorAll('[data-package-type]').forEach(function (block) {
      block.hidden = block.dataset.packageType !== type;
    });
  }
  radios.forEach(function (radio) { radio.addEventListener('change', update); });
  update();
})();

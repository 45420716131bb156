// Draws the dashboard charts from the JSON the page carries; the same numbers are in the tables.
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var palette = ["#1f2328", "#d9a400", "#2f7d4f", "#b42318", "#4263a8", "#7a5195"];
  // A new object per chart: Chart.js writes a bar chart's x/y scales into the options it is given.
  function options() { return { responsive: true, maintainAspectRatio: false, animation: false }; }

  function draw(id, config) {
    var canvas = document.getElementById(id);  // absent when there is nothing to draw
    if (canvas) { new Chart(canvas, config); }
  }

  draw("revenue-chart", {
    type: "bar",
    data: {
      labels: data.months,
      datasets: data.revenue.map(function (series, index) {
        return { label: series.label, data: series.data, backgroundColor: palette[index % palette.length] };
      })
    },
    options: options()
  });

  draw("status-chart", {
    type: "doughnut",
    data: {
      labels: data.statuses.labels,
      datasets: [{ data: data.statuses.data, backgroundColor: ["#d9a400", "#2f7d4f", "#b42318", "#6e7781"] }]
    },
    options: options()
  });

  draw("credits-chart", {
    type: "bar",
    data: {
      labels: data.credits.labels,
      datasets: [
        { label: data.credits.sold_label, data: data.credits.sold, backgroundColor: palette[1] },
        { label: data.credits.used_label, data: data.credits.used, backgroundColor: palette[0] }
      ]
    },
    options: options()
  });
}());

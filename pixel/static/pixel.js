/* Conversion API pixel: fires one conversion from the operator's page.
 *
 * Automatic, from the script tag's data attributes:
 *   <script async src="https://conversions.example/pixel.js"
 *           data-click-id="CLICK_ID" data-type="deposit"
 *           data-amount="40.00" data-currency="eur" data-transaction-id="tx-1"></script>
 * Or by hand, once the script has loaded:
 *   conversionPixel.fire("CLICK_ID", {type: "registration", playerId: "p-1"});
 *
 * It tries navigator.sendBeacon (survives the page closing), then
 * fetch(..., {keepalive: true}), then an image request. Each follows the page's
 * referrer policy: cross-origin, browsers send only the page's origin unless the
 * page allows more (<meta name="referrer" content="no-referrer-when-downgrade">).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = new URL("convert/", script ? script.src : location.href);
  // Data attribute / option name -> the pixel's parameter name.
  var PARAMETERS = {
    type: "type",
    playerId: "player_id",
    amount: "amount",
    currency: "currency",
    time: "time",
    transactionId: "transaction_id",
    test: "test"
  };

  function parameters(options) {
    var form = new URLSearchParams();
    Object.keys(PARAMETERS).forEach(function (name) {
      var value = options[name];
      if (value !== undefined && value !== null && value !== "") {
        form.append(PARAMETERS[name], String(value));
      }
    });
    return form;
  }

  function fireImage(url, form) {
    var image = new Image(1, 1);
    image.src = url + "?" + form.toString();
    return "image";
  }

  function fire(clickId, options) {
    var url = new URL(encodeURIComponent(clickId), endpoint).href;
    var form = parameters(options || {});
    if (navigator.sendBeacon) {
      try {
        if (navigator.sendBeacon(url, form)) {
          return "beacon";
        }
      } catch (ignored) {
        // Some browsers refuse beacons under policy; the next way still works.
      }
    }
    if (window.fetch) {
      fetch(url, {
        method: "POST",
        body: form,
        keepalive: true,
        credentials: "omit"
      }).catch(function () {
        fireImage(url, form);
      });
      return "fetch";
    }
    return fireImage(url, form);
  }

  window.conversionPixel = { fire: fire };
  if (script && script.dataset.clickId) {
    fire(script.dataset.clickId, script.dataset);
  }
})();

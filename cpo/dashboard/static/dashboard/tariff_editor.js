// The tariff editor: OCPI TariffElements (price components and restrictions) as form controls, written back into
// the `elements` JSON field (kept as the "advanced" view), and a price preview of the tariff as typed, refreshed
// while staff type. Without JavaScript the JSON field and the Preview button do the same job.
(function () {
  "use strict";
  const form = document.querySelector("[data-testid=tariff-form]");
  const field = document.getElementById("id_elements");
  const root = document.getElementById("elements-editor");
  if (!form || !field || !root) return;

  const TYPES = {
    ENERGY: "per kWh charged (step size in Wh)",
    FLAT: "fixed price per session (step size 1)",
    TIME: "per hour charging (step size in seconds)",
    PARKING_TIME: "per hour connected but not charging (step size in seconds)",
  };
  const DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"];
  // OCPI TariffRestrictions: [key, label, input type, help]
  const RESTRICTIONS = [
    ["start_time", "From time", "time", "local time of the location, inclusive"],
    ["end_time", "Until time", "time", "exclusive; before the start time means past midnight"],
    ["start_date", "From date", "date", "inclusive"],
    ["end_date", "Until date", "date", "exclusive"],
    ["min_kwh", "Min kWh", "number", "energy charged so far, inclusive"],
    ["max_kwh", "Max kWh", "number", "exclusive"],
    ["min_current", "Min current (A)", "number", "sum over phases"],
    ["max_current", "Max current (A)", "number", ""],
    ["min_power", "Min power (kW)", "number", ""],
    ["max_power", "Max power (kW)", "number", ""],
    ["min_duration", "Min duration (s)", "number", "session duration so far"],
    ["max_duration", "Max duration (s)", "number", ""],
  ];

  let elements = parse(field.value);

  function parse(text) {
    try {
      const value = JSON.parse(text || "[]");
      return Array.isArray(value) ? value : [];
    } catch (e) {
      return null;
    }
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v;
      else if (v !== undefined && v !== null) node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }

  function number(value) {
    if (value === "" || value === null || value === undefined) return undefined;
    const n = Number(value);
    return Number.isFinite(n) ? n : value; // kept as typed: the server says what is wrong with it
  }

  function write() {
    field.value = JSON.stringify(elements, null, 2);
    schedulePreview();
  }

  function input(attrs, value, onInput) {
    const node = el("input", attrs);
    node.value = value === undefined || value === null ? "" : value;
    node.addEventListener("input", () => onInput(node.value));
    return node;
  }

  function component(element, index) {
    const pc = element.price_components[index];
    const type = el("select", { "data-testid": "component-type", "aria-label": "Type" });
    Object.entries(TYPES).forEach(([name, help]) => {
      const option = el("option", { value: name, text: name, title: help });
      if (pc.type === name) option.selected = true;
      type.appendChild(option);
    });
    type.addEventListener("change", () => {
      pc.type = type.value;
      write();
    });
    const set = (key) => (value) => {
      const n = number(value);
      if (n === undefined) delete pc[key];
      else pc[key] = n;
      write();
    };
    const remove = el("button", { type: "button", class: "small", text: "Remove", "data-testid": "component-remove" });
    remove.addEventListener("click", () => {
      element.price_components.splice(index, 1);
      render();
    });
    return el("tr", { "data-testid": "component" }, [
      el("td", {}, [type]),
      el("td", {}, [input({ type: "number", step: "any", min: "0", "data-testid": "component-price", "aria-label": "Price excl. VAT", placeholder: "price excl. VAT" }, pc.price, set("price"))]),
      el("td", {}, [input({ type: "number", step: "any", min: "0", "data-testid": "component-vat", "aria-label": "VAT %", placeholder: "VAT %" }, pc.vat, set("vat"))]),
      el("td", {}, [input({ type: "number", step: "1", min: "0", "data-testid": "component-step", "aria-label": "Step size", placeholder: "step size" }, pc.step_size, set("step_size"))]),
      el("td", {}, [remove]),
    ]);
  }

  function restrictions(element) {
    const r = element.restrictions || {};
    const store = () => {
      if (Object.keys(r).length) element.restrictions = r;
      else delete element.restrictions;
      write();
    };
    const grid = el("div", { class: "form-grid" });
    RESTRICTIONS.forEach(([key, label, type, help]) => {
      const control = input({ type, step: type === "number" ? "any" : null, name: `r-${key}`, "data-restriction": key }, r[key], (value) => {
        const v = type === "number" ? number(value) : value || undefined;
        if (v === undefined) delete r[key];
        else r[key] = v;
        store();
      });
      grid.appendChild(el("label", { text: label + " " }, [control, el("small", { class: "muted", text: help })]));
    });
    const days = el("fieldset", { class: "days" }, [el("legend", { text: "Days of the week (none: every day)" })]);
    DAYS.forEach((day) => {
      const box = el("input", { type: "checkbox", value: day, "data-day": day });
      box.checked = (r.day_of_week || []).includes(day);
      box.addEventListener("change", () => {
        const chosen = DAYS.filter((d) => days.querySelector(`[data-day=${d}]`).checked);
        if (chosen.length) r.day_of_week = chosen;
        else delete r.day_of_week;
        store();
      });
      days.appendChild(el("label", { text: day.slice(0, 3) + " " }, [box]));
    });
    const reservation = el("select", { "data-restriction": "reservation" });
    [["", "not about reservations"], ["RESERVATION", "RESERVATION – applies while reserved"], ["RESERVATION_EXPIRES", "RESERVATION_EXPIRES – when a reservation expires unused"]].forEach(([value, text]) => {
      const option = el("option", { value, text });
      if ((r.reservation || "") === value) option.selected = true;
      reservation.appendChild(option);
    });
    reservation.addEventListener("change", () => {
      if (reservation.value) r.reservation = reservation.value;
      else delete r.reservation;
      store();
    });
    const open = Object.keys(r).length > 0;
    return el("details", open ? { open: "" } : {}, [
      el("summary", { text: "Restrictions (when this element applies)" }),
      grid,
      days,
      el("label", { text: "Reservation " }, [reservation]),
    ]);
  }

  function elementBox(element, index) {
    element.price_components = element.price_components || [];
    const rows = element.price_components.map((_, i) => component(element, i));
    const add = el("button", { type: "button", class: "small", text: "+ price component", "data-testid": "component-add" });
    add.addEventListener("click", () => {
      element.price_components.push({ type: "ENERGY", price: 0, step_size: 1 });
      render();
    });
    const remove = el("button", { type: "button", class: "small", text: "Remove element" });
    remove.addEventListener("click", () => {
      elements.splice(index, 1);
      render();
    });
    const table = el("table", { class: "compact" }, [
      el("thead", {}, [el("tr", {}, ["Type", "Price excl. VAT", "VAT %", "Step size", ""].map((t) => el("th", { text: t })))]),
      el("tbody", {}, rows),
    ]);
    return el("fieldset", { class: "tariff-element", "data-testid": "tariff-element" }, [
      el("legend", { text: `Element ${index + 1}` + (index ? " (used where the elements above do not apply)" : "") }),
      table,
      el("p", {}, [add, document.createTextNode(" "), remove]),
      restrictions(element),
    ]);
  }

  function render() {
    root.replaceChildren();
    if (elements === null) {
      root.appendChild(el("p", { class: "msg error", text: "The JSON below is not valid: fix it there (advanced view)." }));
      return;
    }
    elements.forEach((element, index) => root.appendChild(elementBox(element, index)));
    const help = el("ul", { class: "muted small" });
    Object.entries(TYPES).forEach(([name, text]) => help.appendChild(el("li", { text: `${name}: ${text}` })));
    root.appendChild(help);
    const add = el("button", { type: "button", text: "+ element", "data-testid": "element-add" });
    add.addEventListener("click", () => {
      elements.push({ price_components: [{ type: "ENERGY", price: 0, step_size: 1 }] });
      render();
    });
    root.appendChild(add);
    write();
  }

  field.addEventListener("input", () => {
    const parsed = parse(field.value);
    if (parsed !== null) {
      elements = parsed;
      root.replaceChildren();
      elements.forEach((element, index) => root.appendChild(elementBox(element, index)));
      schedulePreview();
    }
  });

  // -- the live preview: the form as typed, priced by the server, without saving
  const target = document.getElementById("preview-result");
  let timer = null;
  let sequence = 0;
  function schedulePreview() {
    if (!target) return;
    clearTimeout(timer);
    timer = setTimeout(preview, 350);
  }
  async function preview() {
    const mine = ++sequence;
    const data = new FormData(form);
    data.set("preview", "1");
    data.set("fragment", "1");
    target.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(window.location.pathname, { method: "POST", body: data, credentials: "same-origin" });
      const html = await response.text();
      if (mine === sequence) target.innerHTML = html;
    } catch (e) {
      if (mine === sequence) target.textContent = "Preview unavailable: " + e;
    } finally {
      if (mine === sequence) target.removeAttribute("aria-busy");
    }
  }
  form.addEventListener("input", (event) => {
    if (!root.contains(event.target) && event.target !== field) schedulePreview();
  });
  form.addEventListener("change", (event) => {
    if (!root.contains(event.target) && event.target !== field) schedulePreview();
  });

  render();
})();

/**
 * The page's stylesheet, served from the package under the mount path (`style-src 'self'`: no inline
 * styles, so nothing in the markup carries a `style` attribute either). Light and dark follow the
 * system setting; every text colour pair below meets WCAG AA (4.5:1), and control borders and chart
 * bars meet 3:1 against their background (WCAG 1.4.11).
 */
export const STYLESHEET = `
:root {
  color-scheme: light dark;
  --bg: #ffffff;
  --surface: #f5f6f8;
  --text: #1b1d21;
  --muted: #4b5260;
  --line: #d5d9df;
  --control-border: #6b7280;
  --accent: #0b57d0;
  --on-accent: #ffffff;
  --danger: #b3261e;
  --on-danger: #ffffff;
  --focus: #0b57d0;
  --warn-text: #5c4300;
  --warn-bg: #fef7e0;
  --warn-line: #a87a00;
  --ok-text: #0d652d;
  --ok-bg: #e6f4ea;
  --bad-text: #8c1d18;
  --bad-bg: #fce8e6;
  --info-text: #0b4db8;
  --info-bg: #e8f0fe;
  --quiet-text: #4b5260;
  --quiet-bg: #eceef2;
  --bar: #0b57d0;
  --bar-second: #b3261e;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 100%;
  line-height: 1.5;
}

@media (prefers-color-scheme: dark) {
  :root {
    --bg: #121417;
    --surface: #1c1f24;
    --text: #e8eaed;
    --muted: #aab1bc;
    --line: #3a3f47;
    --control-border: #8b93a1;
    --accent: #8ab4f8;
    --on-accent: #0b1d3a;
    --danger: #f2b8b5;
    --on-danger: #3a0b08;
    --focus: #8ab4f8;
    --warn-text: #fdd663;
    --warn-bg: #2e2506;
    --warn-line: #b88a00;
    --ok-text: #81c995;
    --ok-bg: #0f2a19;
    --bad-text: #f2b8b5;
    --bad-bg: #3a1210;
    --info-text: #a8c7fa;
    --info-bg: #0f2340;
    --quiet-text: #c4c9d1;
    --quiet-bg: #262a31;
    --bar: #8ab4f8;
    --bar-second: #f28b82;
  }
}

*, *::before, *::after { box-sizing: border-box; }
/* The rules below give buttons a display of their own; what is hidden stays hidden (the copy button until the script runs). */
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--text); }
a { color: var(--accent); text-underline-offset: 0.15em; }
a:hover { text-decoration-thickness: 2px; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.92em; }
h1, h2, h3 { line-height: 1.25; margin: 0 0 0.5rem; }
h1 { font-size: 1.6rem; }
h2 { font-size: 1.2rem; }
p { margin: 0 0 0.75rem; }
.visually-hidden {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}

.site-header { border-bottom: 1px solid var(--line); background: var(--surface); }
.site-header .inner, main, .site-footer { max-width: 72rem; margin: 0 auto; padding: 0 1.25rem; }
.site-header .inner { display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; align-items: baseline; justify-content: space-between; padding-block: 0.9rem; }
.site-header .brand { font-weight: 650; color: var(--text); text-decoration: none; font-size: 1.05rem; }
.site-header .who { color: var(--muted); margin: 0; }
.site-header .nav { display: flex; gap: 1rem; margin: 0; padding: 0; list-style: none; }
main { padding-block: 1.5rem 3rem; }
.site-footer { color: var(--muted); font-size: 0.875rem; padding-block: 0 2rem; }

.notice { border: 1px solid var(--warn-line); background: var(--warn-bg); color: var(--warn-text); border-radius: 0.5rem; padding: 0.6rem 0.9rem; margin: 0 0 1.25rem; }
.flash { border: 1px solid var(--line); border-left: 4px solid var(--accent); background: var(--surface); border-radius: 0.5rem; padding: 0.6rem 0.9rem; margin: 0 0 1.25rem; }
.error-summary { border: 2px solid var(--danger); border-radius: 0.5rem; padding: 0.75rem 1rem; margin: 0 0 1.25rem; }
.error-summary h2 { font-size: 1.05rem; }
.error-summary ul { margin: 0; padding-left: 1.2rem; }
.error-summary a { color: var(--danger); font-weight: 600; }

.page-head { display: flex; flex-wrap: wrap; gap: 0.75rem 1.5rem; align-items: center; justify-content: space-between; margin-bottom: 1rem; }
.page-head h1 { margin: 0; }
.page-head.title-row { justify-content: flex-start; }
.lead { color: var(--muted); max-width: 48rem; }

.button, button {
  display: inline-flex; align-items: center; gap: 0.4rem; font: inherit; font-weight: 600;
  border-radius: 0.45rem; border: 1px solid var(--control-border); background: var(--bg); color: var(--text);
  padding: 0.45rem 0.95rem; cursor: pointer; text-decoration: none; line-height: 1.3;
}
.button:hover, button:hover { background: var(--surface); }
.button.primary, button.primary { background: var(--accent); border-color: var(--accent); color: var(--on-accent); }
.button.primary:hover, button.primary:hover { filter: brightness(1.08); }
.button.danger, button.danger { background: var(--danger); border-color: var(--danger); color: var(--on-danger); }
.button.danger:hover, button.danger:hover { filter: brightness(1.08); }
button.link { border: 0; background: none; color: var(--accent); padding: 0; font-weight: 400; text-decoration: underline; }

.filters { display: flex; flex-wrap: wrap; gap: 0.75rem 1rem; align-items: flex-end; margin: 0 0 1rem; padding: 0.75rem 1rem; background: var(--surface); border: 1px solid var(--line); border-radius: 0.5rem; }
.filters .field { margin: 0; }

.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 0.5rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.94rem; }
caption { text-align: left; padding: 0.6rem 0.9rem; font-weight: 600; }
th, td { text-align: left; padding: 0.55rem 0.75rem; border-top: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--surface); font-weight: 600; white-space: nowrap; }
td.nowrap, th.nowrap { white-space: nowrap; }
th.key-name { min-width: 10rem; }
.muted { color: var(--muted); }
.scopes { display: flex; flex-wrap: wrap; gap: 0.25rem; margin: 0; padding: 0; list-style: none; }
.scopes li code { background: var(--quiet-bg); color: var(--quiet-text); border-radius: 0.3rem; padding: 0.05rem 0.35rem; }
.pager { display: flex; gap: 1rem; margin-top: 1rem; }

.badge { display: inline-block; border-radius: 999px; padding: 0.05rem 0.6rem; font-size: 0.84rem; font-weight: 600; white-space: nowrap; }
.badge.active { color: var(--ok-text); background: var(--ok-bg); }
.badge.revoked { color: var(--bad-text); background: var(--bad-bg); }
.badge.expired { color: var(--warn-text); background: var(--warn-bg); }
.badge.rotating { color: var(--info-text); background: var(--info-bg); }
.badge.rotated, .badge.disabled, .badge.env { color: var(--quiet-text); background: var(--quiet-bg); }
.badge.env.live { color: var(--info-text); background: var(--info-bg); }

form.stack { display: grid; gap: 1.25rem; max-width: 40rem; }
.field { display: grid; gap: 0.3rem; margin: 0; }
.field label, .field legend, .label { font-weight: 600; }
.hint { color: var(--muted); font-size: 0.9rem; margin: 0; }
input[type="text"], select {
  font: inherit; color: var(--text); background: var(--bg); border: 1px solid var(--control-border);
  border-radius: 0.4rem; padding: 0.4rem 0.6rem; min-width: 12rem; max-width: 100%;
}
input[type="text"], textarea { width: 100%; }
textarea { font: inherit; color: var(--text); background: var(--bg); border: 1px solid var(--control-border); border-radius: 0.4rem; padding: 0.4rem 0.6rem; }
.row { display: flex; flex-wrap: wrap; gap: 0.5rem 0.75rem; align-items: center; }
.row input[type="text"] { width: 10rem; }
.row label { font-weight: 400; }
details.more { border: 1px solid var(--line); border-radius: 0.5rem; padding: 0.2rem 1rem 0.2rem; }
details.more[open] { padding-bottom: 1rem; }
details.more > summary { margin: 0.5rem 0; font-weight: 600; }
details.more > .field + .field, details.more > summary + .field { margin-top: 1rem; }
input[type="checkbox"] { width: 1.1rem; height: 1.1rem; margin: 0.15rem 0 0; accent-color: var(--accent); }
fieldset { border: 1px solid var(--line); border-radius: 0.5rem; padding: 0.6rem 1rem 0.9rem; margin: 0; min-width: 0; }
fieldset legend { padding: 0 0.3rem; }
.choices { display: grid; gap: 0.5rem; margin: 0.3rem 0 0; padding: 0; list-style: none; }
.choice { display: flex; gap: 0.6rem; align-items: flex-start; }
.choice label { font-weight: 400; }
.choice .hint { display: block; }
.field-error { color: var(--danger); font-weight: 600; margin: 0; }
[aria-invalid="true"] { border-color: var(--danger); border-width: 2px; }
fieldset.invalid { border-color: var(--danger); border-width: 2px; }
.actions { display: flex; flex-wrap: wrap; gap: 0.75rem; align-items: center; }

.card { border: 1px solid var(--line); border-radius: 0.6rem; padding: 1.1rem 1.25rem; margin: 0 0 1.5rem; background: var(--bg); }
.card h2 { margin-bottom: 0.75rem; }
.details { display: grid; grid-template-columns: max-content 1fr; gap: 0.4rem 1.5rem; margin: 0; }
.details dt { color: var(--muted); }
.details dd { margin: 0; }
.grid-2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); gap: 1.5rem; }
.inline-form { display: flex; flex-wrap: wrap; gap: 0.6rem; align-items: flex-end; }
.inline-form .field { flex: 1 1 14rem; }
.card > form + form { margin-top: 1.25rem; padding-top: 1.25rem; border-top: 1px solid var(--line); }

.secret-card { border: 2px solid var(--accent); border-radius: 0.75rem; padding: 1.25rem 1.4rem; max-width: 46rem; margin: 0 0 1.5rem; background: var(--bg); box-shadow: 0 8px 28px rgb(0 0 0 / 0.12); }
.secret-card h2 { font-size: 1.3rem; }
.secret-row { display: flex; flex-wrap: wrap; gap: 0.6rem; align-items: center; margin: 0.75rem 0; }
.secret {
  display: block; flex: 1 1 24rem; user-select: all; -webkit-user-select: all; overflow-wrap: anywhere;
  font-size: 1.02rem; padding: 0.6rem 0.8rem; border-radius: 0.45rem; border: 1px solid var(--control-border); background: var(--surface); color: var(--text);
}
.warning { border-left: 4px solid var(--warn-line); background: var(--warn-bg); color: var(--warn-text); padding: 0.55rem 0.85rem; border-radius: 0.35rem; font-weight: 600; }
.live-region:empty { display: none; }
.live-region { color: var(--ok-text); font-weight: 600; margin: 0; }

dialog { border: 1px solid var(--line); border-radius: 0.75rem; padding: 1.25rem 1.4rem; max-width: 32rem; background: var(--bg); color: var(--text); box-shadow: 0 12px 40px rgb(0 0 0 / 0.3); }
dialog::backdrop { background: rgb(0 0 0 / 0.5); }
dialog form { margin: 0; }

.chart-figure { margin: 0; }
.chart { width: 100%; height: auto; max-width: 56rem; display: block; }
.chart .bar { fill: var(--bar); }
.chart .bar.second { fill: var(--bar-second); }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.chart .axis { stroke: var(--muted); stroke-width: 1; }
.chart text { fill: var(--muted); font-size: 12px; font-family: inherit; }
.chart .empty { fill: var(--muted); font-size: 14px; }
.legend { display: flex; flex-wrap: wrap; gap: 1rem; margin: 0.5rem 0 0; padding: 0; list-style: none; color: var(--muted); font-size: 0.9rem; }
.legend .swatch { display: inline-block; width: 0.8rem; height: 0.8rem; border-radius: 0.15rem; margin-right: 0.35rem; vertical-align: -0.05rem; background: var(--bar); }
.legend .swatch.second { background: var(--bar-second); }
.totals { display: flex; flex-wrap: wrap; gap: 0.5rem 2rem; margin: 0 0 0.75rem; padding: 0; list-style: none; }
.totals strong { font-size: 1.3rem; display: block; }
details summary { cursor: pointer; color: var(--accent); margin-top: 0.75rem; }
.history { margin: 0; padding: 0; list-style: none; display: grid; gap: 0.5rem; }
`

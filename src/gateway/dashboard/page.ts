// The dashboard's HTML shell, served at GET /admin: a token form and an empty pools section that
// /admin/app.js fills from the admin API. No inline script or style (the CSP forbids both).

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>tollbooth · operator view</title>
<link rel="icon" href="/admin/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/admin/app.css">
<script src="/admin/app.js" defer></script>
</head>
<body>
<header class="top">
	<h1>tollbooth <span class="subtitle">operator view</span></h1>
	<p id="status" class="status" role="status" aria-live="polite"></p>
	<button id="sign-out" type="button" class="secondary" hidden>Sign out</button>
</header>
<main>
	<section id="login" class="login" aria-labelledby="login-title" hidden>
		<h2 id="login-title">Sign in</h2>
		<form id="login-form">
			<label for="token">Admin token</label>
			<input id="token" name="token" type="password" autocomplete="current-password" spellcheck="false" aria-describedby="login-hint login-error" required>
			<p id="login-hint" class="hint">Kept in this tab only (sessionStorage) and sent as a Bearer header.</p>
			<button type="submit">Open the dashboard</button>
			<p id="login-error" class="error" role="alert"></p>
		</form>
	</section>
	<div id="pools" class="pools" aria-label="Pools" hidden></div>
	<noscript><p class="error">The dashboard needs JavaScript; the JSON API is at /admin/pools.</p></noscript>
</main>
</body>
</html>
`;

/** A gate bar, so the browser asks for no /favicon.ico the Worker does not have. */
export const DASHBOARD_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect x="1" y="6" width="14" height="4" rx="1" fill="#0a60c2"/><rect x="1" y="3" width="2" height="11" fill="#57606a"/></svg>
`;

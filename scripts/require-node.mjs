// Runs first in every npm script that needs Node 22.18+ (TypeScript run directly, wrangler 4,
// vitest 5), so an older Node gets a plain sentence instead of ERR_UNKNOWN_FILE_EXTENSION.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
	console.error(
		`tollbooth needs Node 22.18 or newer (it runs TypeScript directly); this is Node ${process.versions.node}.\n` +
			"With nvm: nvm install && nvm use (the version is in .nvmrc). Or any Node 22 from nodejs.org.",
	);
	process.exit(1);
}

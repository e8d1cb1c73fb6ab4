// `npm run openapi`: writes the admin API's OpenAPI document (src/gateway/admin-openapi.ts) to
// public/admin/openapi.json, served as a static asset at /admin/openapi.json. Run it after
// changing an admin schema; test/node/openapi.test.ts fails until you do.
import { writeFileSync } from "node:fs";
import { openApiDocument } from "../src/gateway/admin-openapi.ts";

export const OPENAPI_FILE = new URL("../public/admin/openapi.json", import.meta.url);

/** The file's text: tabs, as Biome formats JSON, and a final newline. */
export const openApiText = () => `${JSON.stringify(openApiDocument(), null, "\t")}\n`;

if (import.meta.main) {
	writeFileSync(OPENAPI_FILE, openApiText());
	console.log(`wrote ${OPENAPI_FILE.pathname}`);
}

// `npm run hash-key -- <gateway key>`: prints the SHA-256 to put in a tenant's keySha256.
// The key itself never goes into the configuration.
import { createHash } from "node:crypto";

const key = process.argv[2];
if (!key) {
	console.error("usage: npm run hash-key -- <gateway key>");
	process.exit(1);
}
console.log(createHash("sha256").update(key).digest("hex"));

// `npm run hash-key`: the SHA-256 to put in a tenant's keySha256 (or adminKeySha256). The key never
// goes into the configuration, nor on the command line (shell history):
//   npm run hash-key -- --new          a new random key, printed once, and its hash
//   npm run --silent hash-key < file   the key read from stdin (one line; a final newline is dropped)
import { createHash, randomBytes } from "node:crypto";
import { text } from "node:stream/consumers";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
	options: { new: { type: "boolean", default: false } },
	allowPositionals: true,
});

const sha256 = (key: string) => createHash("sha256").update(key).digest("hex");

async function keyFromStdin(): Promise<string> {
	if (process.stdin.isTTY) console.error("Type or paste the key, then Enter and Ctrl-D:");
	return (await text(process.stdin)).replace(/\r?\n$/, "");
}

if (values.new) {
	const key = `tb-${randomBytes(32).toString("base64url")}`;
	console.log(`key:    ${key}   (shown once: give it to the tenant, store it nowhere else)`);
	console.log(`sha256: ${sha256(key)}   (put this in keySha256)`);
} else {
	if (positionals.length > 0) {
		console.error("note: a key on the command line stays in your shell history; prefer stdin.");
	}
	const key = positionals[0] ?? (await keyFromStdin());
	if (key === "") {
		console.error(
			"usage: npm run hash-key -- --new, or the key on stdin: npm run --silent hash-key < key.txt",
		);
		process.exit(1);
	}
	console.log(sha256(key));
}

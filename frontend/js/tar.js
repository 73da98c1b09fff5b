// Files as one uncompressed tar (POSIX ustar), written in the browser. Pure: no DOM, no fetch.
//
// Why the dashboard sends a checkpoint folder as a tar rather than as many multipart parts: the
// server's upload route then checks a folder exactly as it checks an uploaded archive, in one place
// (app/services/uploads.py: member names and types, their count, the size limit counted as bytes
// arrive and again unpacked, and the sha256 that recognises a file uploaded before).
//
// The archive is deterministic — members sorted by name, mode 0644, mtime 0, no owner — so the same
// files give the same bytes and the same sha256: uploading a folder twice is recognised. The Blob
// refers to the File objects; nothing is read into memory until the upload streams it.

const BLOCK = 512;
const NAME_BYTES = 100;
const MAX_MEMBER_BYTES = 8 ** 11 - 1; // an 11-digit octal size field: 8 GiB less one byte
const encoder = new TextEncoder();

/** [{name, file}] (file: a Blob or File; name: a plain file name) → a Blob of type application/x-tar. */
export function tarBlob(members) {
  const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts = [];
  for (const { name, file } of sorted) {
    parts.push(memberHeader(name, file.size), file);
    const padding = (BLOCK - (file.size % BLOCK)) % BLOCK;
    if (padding) parts.push(new Uint8Array(padding));
  }
  parts.push(new Uint8Array(2 * BLOCK)); // the end of the archive: two zero blocks
  return new Blob(parts, { type: "application/x-tar" });
}

function memberHeader(name, size) {
  const nameBytes = encoder.encode(name);
  if (nameBytes.length > NAME_BYTES) throw new Error(`${name}: a file name longer than ${NAME_BYTES} bytes`);
  if (size > MAX_MEMBER_BYTES) throw new Error(`${name}: a file over 8 GB`);
  const block = new Uint8Array(BLOCK);
  const put = (offset, text) => block.set(encoder.encode(text), offset);
  block.set(nameBytes, 0);
  put(100, "0000644\0"); // mode
  put(108, "0000000\0"); // uid
  put(116, "0000000\0"); // gid
  put(124, `${octal(size, 11)}\0`);
  put(136, `${octal(0, 11)}\0`); // mtime
  put(148, "        "); // the checksum is summed with its own field as spaces
  put(156, "0"); // a regular file
  put(257, "ustar\0");
  put(263, "00");
  const checksum = block.reduce((sum, byte) => sum + byte, 0);
  put(148, `${octal(checksum, 6)}\0 `);
  return block;
}

const octal = (n, width) => n.toString(8).padStart(width, "0");

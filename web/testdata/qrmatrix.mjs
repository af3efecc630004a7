// Prints the QR matrix qr.js builds for argv[2], one row per line ("1" dark).
import { qrMatrix } from "../static/qr.js";
for (const row of qrMatrix(process.argv[2])) console.log(row.map((d) => (d ? "1" : "0")).join(""));

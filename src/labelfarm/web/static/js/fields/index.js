// Field types by name: one browser module per field type, as on the server.
import * as bbox from "./bbox.js";
import * as choice from "./choice.js";
import * as multichoice from "./multichoice.js";
import * as number from "./number.js";
import * as text from "./text.js";

const TYPES = { bbox, choice, multichoice, number, text };

export function createField(field, env) {
  const type = TYPES[field.type];
  if (!type) throw new Error(`no browser module for field type ${field.type}`);
  return type.create(field, env);
}

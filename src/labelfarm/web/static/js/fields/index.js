// Field types by name: one browser module per field type, as on the server, loaded by its
// type name from this folder (./<type>.js). The files here are the one list of the types
// the page can label: the server reads the same folder (web/pages/field_support.py) and
// shows a notice instead of tasks when a project has a field type without a module.
const TYPE_NAME = /^[a-z][a-z0-9_]*$/;

export async function createFields(fields, env) {
  const modules = await Promise.all(fields.map((f) => {
    if (!TYPE_NAME.test(f.type)) throw new Error(`bad field type ${JSON.stringify(f.type)}`);
    return import(`./${f.type}.js`);
  }));
  return fields.map((f, i) => modules[i].create(f, env));
}

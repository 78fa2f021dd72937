// An --auth module for the relay tests (tests/node/server.test.mjs,
// tests/browser/package.test.mjs): a token in the URL (?token=) or the hello
// ({token}) names a user; `tok-<name>` is <name>, `tok-ann` is {id, name}.
// Every `staff` room is for ann alone.
const USERS = { 'tok-ann': { id: 'u-ann', name: 'Ann' } };

export async function authenticate({ request, hello }) {
  const token = new URL(request.url, 'http://relay').searchParams.get('token') ?? hello.token;
  if (token === 'tok-throw') throw new Error('the token service says no');
  await new Promise((r) => setTimeout(r, 1)); // as if asked over the network
  if (typeof token !== 'string' || !token.startsWith('tok-')) return null;
  return USERS[token] ?? token.slice(4);
}

export function authorize({ user, room }) {
  return room !== 'staff' || user.id === 'u-ann';
}

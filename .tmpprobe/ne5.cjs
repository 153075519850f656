require("ses"); lockdown({ errorTaming: "unsafe", overrideTaming: "moderate", stackFiltering: "verbose", consoleTaming: "unsafe" });
const inspector = require('inspector');
const path = require('path');
let probe; try { path.join(1); } catch (e) { probe = e; }
let proto = Object.getPrototypeOf(probe), getter;
while (proto && !getter) { getter = Object.getOwnPropertyDescriptor(proto, 'constructor')?.get; proto = Object.getPrototypeOf(proto); }
const s = new inspector.Session(); s.connect();
const post = (m, p) => { let r; s.post(m, p, (e, v) => { if (e) throw e; r = v; }); return r; };
globalThis.__g = getter;
const id = post('Runtime.evaluate', { expression: 'globalThis.__g' }).result.objectId;
const scopes = post('Runtime.getProperties', { objectId: id, ownProperties: true }).internalProperties.find(p => p.name === '[[Scopes]]').value.objectId;
const list = post('Runtime.getProperties', { objectId: scopes, ownProperties: true }).result;
let codes;
for (const sc of list) { const vars = post('Runtime.getProperties', { objectId: sc.value.objectId, ownProperties: true }).result; const c = vars.find(v => v.name === 'codes'); if (c) { post('Runtime.callFunctionOn', { objectId: c.value.objectId, functionDeclaration: 'function(){globalThis.__codes=this}' }); codes = globalThis.__codes; break; } }
const classes = Object.values(codes).filter(k => typeof k === 'function');
const objs = new Set();
const walk = v => { if ((typeof v !== 'object' && typeof v !== 'function') || v === null || objs.has(v) || v === Function.prototype || v === Object.prototype) return; if ([Error, TypeError, RangeError, SyntaxError, URIError, Error.prototype, TypeError.prototype, RangeError.prototype, SyntaxError.prototype, URIError.prototype].includes(v)) return; objs.add(v); walk(Object.getPrototypeOf(v)); for (const k of Reflect.ownKeys(v)) { const d = Object.getOwnPropertyDescriptor(v, k); walk(d.value); walk(d.get); walk(d.set); } };
classes.forEach(walk);
console.log('classes', classes.length, 'objects', objs.size);
const kinds = {}; for (const o of objs) { const k = typeof o === 'function' ? 'fn:' + (o.name || '?') : 'obj'; kinds[k] = (kinds[k] || 0) + 1; }
console.log(Object.entries(kinds).sort((a, b) => b[1] - a[1]).slice(0, 12));
const arr = [...objs];

const frozenBefore = arr => arr.filter(o => Object.isFrozen(o));
const fb = frozenBefore([...objs]);
const kinds2 = {}; for (const o of fb) { const k = typeof o === 'function' ? 'fn:' + (o.name || '?') : 'obj:' + (o.constructor && o.constructor.name); kinds2[k] = (kinds2[k] || 0) + 1; }
console.log('frozen before harden', fb.length, Object.entries(kinds2).sort((a,b)=>b[1]-a[1]).slice(0,10));

/**
 * TypeDoc plugin (typedoc.json): documents each field's default where the default is a
 * frozen constant in code, from that constant's own initializer, so the API reference
 * cannot drift from it. `DEFAULT_LIMITS = Object.freeze({ maxKeyBytes: 1024, … })` gives
 * every `Limits` field a "Default value" line and the constant its full value.
 * It also lists optional fields of option bags (`…Options`, `…Config`) whose doc comment
 * states no default, so `npm run docs:api` shows what is still undocumented.
 */
import { Comment, CommentTag, Converter, ReflectionKind } from "typedoc";
import ts from "typescript";

/** Constant name → the interface whose fields it holds the defaults of. */
const DEFAULTS_OF = { DEFAULT_LIMITS: "Limits", DEFAULT_SYNC_TUNING: "SyncTuning" };

/** Option bags whose optional fields each should say their default (reported, not fatal). */
const OPTION_BAG = /(Options|Config)$/;

/** `1 << 20` → "`1 << 20` (1048576)"; anything not plain integer arithmetic stays as written. */
function describe(text) {
  const plain = text.replace(/_/g, "");
  if (/^[\d\s<>*+()-]+$/.test(plain) && !/^\d+$/.test(plain)) {
    return `\`${text}\` (${Function(`"use strict"; return (${plain});`)()})`;
  }
  return `\`${text}\``;
}

function objectLiteralOf(node) {
  if (!node) return undefined;
  if (ts.isObjectLiteralExpression(node)) return node;
  if (ts.isCallExpression(node) && node.arguments.length === 1) return objectLiteralOf(node.arguments[0]); // Object.freeze({...})
  if (ts.isAsExpression(node) || ts.isSatisfiesExpression(node) || ts.isParenthesizedExpression(node)) return objectLiteralOf(node.expression);
  return undefined;
}

export function load(app) {
  /** interface name → field name → default text */
  const found = new Map();
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (context, reflection) => {
    const target = DEFAULTS_OF[reflection.name];
    if (!target || !reflection.kindOf(ReflectionKind.Variable)) return;
    const decl = context.getSymbolFromReflection(reflection)?.valueDeclaration;
    const literal = decl && ts.isVariableDeclaration(decl) ? objectLiteralOf(decl.initializer) : undefined;
    if (!literal) throw new Error(`typedoc-defaults: ${reflection.name} is no longer an object literal; update scripts/typedoc-defaults.mjs`);
    const fields = new Map();
    for (const p of literal.properties) {
      if (ts.isPropertyAssignment(p)) fields.set(p.name.getText(), p.initializer.getText());
    }
    found.set(target, fields);
    reflection.defaultValue = `{ ${[...fields].map(([k, v]) => `${k}: ${v}`).join(", ")} }`;
  });
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const [target, fields] of found) {
      const iface = context.project.getChildByName(target);
      if (!iface) throw new Error(`typedoc-defaults: interface ${target} is not exported`);
      for (const [name, text] of fields) {
        const field = iface.getChildByName(name);
        if (!field) throw new Error(`typedoc-defaults: ${target} has no field ${name}`);
        field.comment ??= new Comment();
        if (field.comment.getTag("@defaultValue")) continue;
        field.comment.blockTags.push(new CommentTag("@defaultValue", [{ kind: "text", text: describe(text) }]));
      }
    }
  });
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    const undocumented = [];
    for (const bag of context.project.getReflectionsByKind(ReflectionKind.Interface)) {
      if (!OPTION_BAG.test(bag.name)) continue;
      for (const field of bag.children ?? []) {
        if (!field.flags.isOptional || /^on[A-Z]/.test(field.name)) continue;
        const comment = field.comment;
        const said = comment && (comment.getTag("@defaultValue") || /\b(default|omit)/i.test(Comment.combineDisplayParts(comment.summary)));
        if (!said) undocumented.push(`${bag.name}.${field.name}`);
      }
    }
    if (undocumented.length > 0) app.logger.info(`options without a documented default: ${undocumented.join(", ")}`);
  });
}

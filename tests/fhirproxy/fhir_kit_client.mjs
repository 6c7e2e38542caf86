// fhir-kit-client (npm, an independent JavaScript FHIR client) against the Kizuna FHIR proxy:
// node fhir_kit_client.mjs BASE_URL IDS_JSON — runs every supported parameter through the
// client's own calls and prints one JSON object of what came back (test_fhir_clients.py
// checks it). A call that fails is recorded with its HTTP status, never swallowed.
import { Client } from 'fhir-kit-client';

const [base, idsJson] = process.argv.slice(2);
const ids = JSON.parse(idsJson);
const client = new Client({ baseUrl: base });
const out = {};

const matchIds = (bundle) => (bundle.entry ?? [])
  .filter((e) => e.search?.mode === 'match').map((e) => e.resource.id);
const includeRefs = (bundle) => (bundle.entry ?? [])
  .filter((e) => e.search?.mode === 'include')
  .map((e) => `${e.resource.resourceType}/${e.resource.id}`);

async function status(promise) {
  try {
    await promise;
    return 200;
  } catch (err) {
    return err.response?.status ?? String(err);
  }
}

const search = (resourceType, searchParams, options) =>
  client.search({ resourceType, searchParams, options });

const capability = await client.capabilityStatement();
out.capability = capability.rest[0].resource.map((r) => r.type);

out.vitals = matchIds(await search('Observation',
  { category: 'vital-signs', _sort: '-date', _count: 50 }));
out.byPatient = matchIds(await search('Observation', { patient: ids.patient, _sort: 'date' }));
out.code = matchIds(await search('Observation', { code: `http://loinc.org|${ids.weightCode}` }));
out.date = matchIds(await search('Observation', { date: 'ge2022-01-01', _sort: 'date' }));
out.countZero = await search('Observation', { _count: 0 });
out.summaryCount = (await search('Observation', { _summary: 'count' })).total;
out.summaryTrue = (await search('Patient', { _summary: 'true' })).entry[0].resource;
out.elements = (await search('Patient', { _elements: 'gender' })).entry[0].resource;
out.include = includeRefs(await search('MedicationRequest',
  { _include: 'MedicationRequest:medication' }));
out.lastUpdated = matchIds(await search('Observation', { _lastUpdated: 'gt2999-01-01' }));
out.exact = matchIds(await search('Patient', { 'name:exact': 'José' }));
out.exactWrongCase = matchIds(await search('Patient', { 'name:exact': 'jose' }));
out.text = matchIds(await search('Observation', { 'code:text': 'resume' }));
out.missing = matchIds(await search('Observation', { 'category:missing': 'true' }));

// paging through the client's own nextPage
let page = await search('Observation', { _sort: 'date', _count: 2 });
out.paged = matchIds(page);
while ((page = await client.nextPage({ bundle: page }))) {
  out.paged.push(...matchIds(page));
}

// POST [type]/_search, form-encoded by the client
out.postSearch = matchIds(await search('Observation',
  { category: 'vital-signs', _sort: '-date' }, { postSearch: true }));

// read, ETag and a conditional read
const read = await client.read({ resourceType: 'Observation', id: ids.heart });
const response = Client.httpFor(read).response;
out.readMeta = read.meta;
out.etag = response.headers.get('etag');
out.conditional = await status(client.read({ resourceType: 'Observation', id: ids.heart,
  options: { headers: { 'If-None-Match': out.etag } } }));

// Patient/$everything through the client's operation call
const everything = await client.operation({ name: 'everything', resourceType: 'Patient',
  id: ids.patient, method: 'GET' });
out.everything = matchIds(everything);

// what the proxy refuses, as the client reports it
out.xml = await status(client.read({ resourceType: 'Observation', id: ids.heart,
  options: { headers: { Accept: 'application/fhir+xml' } } }));
out.unknown = await status(search('Observation', { foo: 'bar' }));
out.create = await status(client.create({ resourceType: 'Observation',
  body: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } }));
out.missingRead = await status(client.read({ resourceType: 'Observation', id: 'nope' }));

console.log(JSON.stringify(out));

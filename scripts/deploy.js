// Deploys Kizuna's contracts with Hardhat 3 and writes deployments/<chainId>.json, in the same
// format as the Python deploy() (kizuna/chain/deploy.py; format in deployments/README.md).
//
//   npx hardhat run scripts/deploy.js --network localhost
//   KIZUNA_TESTNET_RPC_URL=... KIZUNA_DEPLOYER_KEY=... \
//     npx hardhat run scripts/deploy.js --network testnet
//
// Optional: KIZUNA_REGISTRAR (may verify providers) and KIZUNA_ANCHORER (the service anchoring
// receipt roots); both default to the deployer. KIZUNA_DEPLOYMENTS_DIR overrides deployments/.
//
// What is deployed is the committed artifacts (kizuna/chain/artifacts/), the very bytes Python
// users load; the script first builds the sources with Hardhat and refuses to deploy when that
// build differs from the committed artifacts (run `python -m kizuna.chain.compile --write`).
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { ContractFactory, BrowserProvider, getAddress } from "ethers";
import hre, { network } from "hardhat";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NAMES = ["ProviderRegistry", "ConsentLedger", "AccessLog", "StudyRegistry"]; // deployment order
const FORMAT_VERSION = 1;

// JSON with sorted keys and no whitespace: the canonical form Python's abi hashes use
// (json.dumps(..., sort_keys=True, separators=(",", ":"))).
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
const sha256 = (text) => "0x" + createHash("sha256").update(text).digest("hex");

function loadArtifacts() {
  const artifacts = {};
  for (const name of NAMES) {
    const file = path.join(root, "kizuna", "chain", "artifacts", `${name}.json`);
    artifacts[name] = JSON.parse(fs.readFileSync(file, "utf8"));
  }
  return artifacts;
}

async function checkFreshBuild(artifacts) {
  await hre.tasks.getTask("build").run({ noTests: true, quiet: true });
  for (const name of NAMES) {
    const built = await hre.artifacts.readArtifact(name);
    if (built.bytecode !== artifacts[name].bytecode) {
      throw new Error(
        `${name}: Hardhat's build differs from kizuna/chain/artifacts/${name}.json; ` +
          "run `python -m kizuna.chain.compile --write` and commit the artifacts",
      );
    }
  }
}

async function main() {
  const artifacts = loadArtifacts();
  await checkFreshBuild(artifacts);
  const connection = await network.getOrCreate();
  const provider = new BrowserProvider(connection.provider);
  const signer = await provider.getSigner();
  const deployer = getAddress(await signer.getAddress());
  const registrar = getAddress(process.env.KIZUNA_REGISTRAR ?? deployer);
  const anchorer = getAddress(process.env.KIZUNA_ANCHORER ?? deployer);
  const chainId = Number((await provider.getNetwork()).chainId);
  console.log(`deploying Kizuna on chain ${chainId} (${connection.networkName}) from ${deployer}`);

  const deployed = {};
  let deployBlock;
  const args = {
    ProviderRegistry: () => [deployer, registrar],
    ConsentLedger: () => [deployed.ProviderRegistry],
    AccessLog: () => [deployer, anchorer],
    StudyRegistry: () => [deployed.ProviderRegistry, deployed.ConsentLedger],
  };
  for (const name of NAMES) {
    const factory = new ContractFactory(artifacts[name].abi, artifacts[name].bytecode, signer);
    const contract = await factory.deploy(...args[name]());
    const receipt = await contract.deploymentTransaction().wait();
    deployed[name] = getAddress(await contract.getAddress());
    deployBlock ??= receipt.blockNumber;
    console.log(`  ${name.padEnd(17)} ${deployed[name]}  (block ${receipt.blockNumber}, gas ${receipt.gasUsed})`);
  }

  const abiHash = sha256(canonical(NAMES.map((name) => ({ contract: name, abi: artifacts[name].abi }))));
  const deployment = {
    format: FORMAT_VERSION,
    chainId,
    contracts: Object.fromEntries(
      NAMES.map((name) => [name, { address: deployed[name], abiHash: sha256(canonical(artifacts[name].abi)) }]),
    ),
    deployBlock,
    abiHash,
    deployer,
    roles: { registrar, anchorer },
  };
  const dir = process.env.KIZUNA_DEPLOYMENTS_DIR ?? path.join(root, "deployments");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${chainId}.json`);
  fs.writeFileSync(file, JSON.stringify(deployment, null, 2) + "\n");
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

await main();

// Hardhat 3 configuration for Kizuna's contracts.
//
// Offline by design: the compiler is npm's solc (its WASM build, node_modules/solc/soljson.js),
// given by path, so Hardhat never downloads one. The settings mirror kizuna/chain/compile.py
// (SETTINGS) and foundry.toml, so `npx hardhat build` produces byte-for-byte the bytecode of the
// committed artifacts in kizuna/chain/artifacts/ (scripts/deploy.js checks this before deploying).
// The Solidity tests import no forge-std (see contracts/test/utils/Cheats.sol), so Hardhat builds
// and runs them as well as forge does.
//
// Networks:
//   localhost  anvil (`kizuna demo`, `npx anvil`) or `npx hardhat node` on 127.0.0.1:8545
//              (override with KIZUNA_RPC_URL)
//   testnet    any JSON-RPC endpoint: KIZUNA_TESTNET_RPC_URL and the deployer's private key
//              KIZUNA_DEPLOYER_KEY come from the environment (never from this file).
import { createRequire } from "node:module";
import { configVariable } from "hardhat/config";

const require = createRequire(import.meta.url);

export default {
  solidity: {
    version: "0.8.30",
    path: require.resolve("solc/soljson.js"),
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 10000 },
      metadata: { bytecodeHash: "none", appendCBOR: false },
    },
  },
  paths: {
    sources: "contracts",
    tests: { solidity: "contracts/test" },
  },
  // `npx hardhat test solidity` runs the same tests as `forge test` (contracts/test/*.t.sol);
  // the shared EIP-712 vectors are read from tests/vectors.
  test: {
    solidity: {
      fsPermissions: { readDirectory: ["tests/vectors"] },
    },
  },
  networks: {
    localhost: {
      type: "http",
      chainType: "l1",
      url: process.env.KIZUNA_RPC_URL ?? "http://127.0.0.1:8545",
    },
    testnet: {
      type: "http",
      chainType: "l1",
      url: configVariable("KIZUNA_TESTNET_RPC_URL"),
      accounts: [configVariable("KIZUNA_DEPLOYER_KEY")],
    },
  },
};

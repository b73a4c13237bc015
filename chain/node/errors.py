"""JSON-RPC 2.0 and Starknet JSON-RPC (spec 0.10) errors raised by the dev node.

Every error a client can cause is one of these: the server turns it into a JSON-RPC
``error`` object and never into an HTTP 500. Codes and messages follow the Starknet
specification (``starknet_api_openrpc.json`` / ``starknet_write_api.json``).
"""

from __future__ import annotations

from typing import Any


class RpcError(Exception):
    """An error answered to the client as ``{"code", "message", "data"?}``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            body["data"] = self.data
        return body


# --- JSON-RPC 2.0 --------------------------------------------------------------------


def parse_error(detail: str) -> RpcError:
    return RpcError(-32700, "Parse error", detail)


def invalid_request(detail: str) -> RpcError:
    return RpcError(-32600, "Invalid Request", detail)


def method_not_found(method: str) -> RpcError:
    return RpcError(-32601, "Method not found", method)


def invalid_params(detail: str) -> RpcError:
    return RpcError(-32602, "Invalid params", detail)


# --- Starknet ------------------------------------------------------------------------

FAILED_TO_RECEIVE_TXN = 1
CONTRACT_NOT_FOUND = 20
ENTRYPOINT_NOT_FOUND = 21
BLOCK_NOT_FOUND = 24
INVALID_TXN_INDEX = 27
CLASS_HASH_NOT_FOUND = 28
TXN_HASH_NOT_FOUND = 29
PAGE_SIZE_TOO_BIG = 31
NO_BLOCKS = 32
INVALID_CONTINUATION_TOKEN = 33
TOO_MANY_KEYS_IN_FILTER = 34
CONTRACT_ERROR = 40
TRANSACTION_EXECUTION_ERROR = 41
INVALID_TRANSACTION_NONCE = 52
INSUFFICIENT_RESOURCES_FOR_VALIDATE = 53
VALIDATION_FAILURE = 55
DUPLICATE_TX = 59
UNSUPPORTED_TX_VERSION = 61
UNEXPECTED_ERROR = 63


def contract_not_found() -> RpcError:
    return RpcError(CONTRACT_NOT_FOUND, "Contract not found")


def entrypoint_not_found() -> RpcError:
    return RpcError(ENTRYPOINT_NOT_FOUND, "Requested entry point does not exist in the contract")


def block_not_found() -> RpcError:
    return RpcError(BLOCK_NOT_FOUND, "Block not found")


def invalid_txn_index() -> RpcError:
    return RpcError(INVALID_TXN_INDEX, "Invalid transaction index in a block")


def class_hash_not_found() -> RpcError:
    return RpcError(CLASS_HASH_NOT_FOUND, "Class hash not found")


def txn_hash_not_found() -> RpcError:
    return RpcError(TXN_HASH_NOT_FOUND, "Transaction hash not found")


def page_size_too_big(limit: int) -> RpcError:
    return RpcError(PAGE_SIZE_TOO_BIG, "Requested page size is too big", f"max {limit}")


def invalid_continuation_token() -> RpcError:
    return RpcError(
        INVALID_CONTINUATION_TOKEN, "The supplied continuation token is invalid or unknown"
    )


def too_many_keys_in_filter(limit: int) -> RpcError:
    return RpcError(TOO_MANY_KEYS_IN_FILTER, "Too many keys provided in a filter", f"max {limit}")


def contract_error(revert_error: str) -> RpcError:
    return RpcError(CONTRACT_ERROR, "Contract error", {"revert_error": revert_error})


def transaction_execution_error(index: int, execution_error: str) -> RpcError:
    return RpcError(
        TRANSACTION_EXECUTION_ERROR,
        "Transaction execution error",
        {"transaction_index": index, "execution_error": execution_error},
    )


def invalid_transaction_nonce(detail: str) -> RpcError:
    return RpcError(INVALID_TRANSACTION_NONCE, "Invalid transaction nonce", detail)


def insufficient_resources(detail: str) -> RpcError:
    return RpcError(
        INSUFFICIENT_RESOURCES_FOR_VALIDATE,
        "The transaction's resources don't cover validation or the minimal transaction fee",
        detail,
    )


def validation_failure(detail: str) -> RpcError:
    return RpcError(VALIDATION_FAILURE, "Account validation failed", detail)


def duplicate_tx() -> RpcError:
    return RpcError(DUPLICATE_TX, "A transaction with the same hash already exists in the mempool")


def unsupported_tx_version(detail: str) -> RpcError:
    return RpcError(UNSUPPORTED_TX_VERSION, "The transaction version is not supported", detail)


def unexpected_error(detail: str) -> RpcError:
    return RpcError(UNEXPECTED_ERROR, "An unexpected error occurred", detail)


# --- write API (starknet_write_api.json) ---------------------------------------------

CLASS_ALREADY_DECLARED = 51
INSUFFICIENT_ACCOUNT_BALANCE = 54
COMPILATION_FAILED = 56
CONTRACT_CLASS_SIZE_IS_TOO_LARGE = 57
NON_ACCOUNT = 58
COMPILED_CLASS_HASH_MISMATCH = 60
UNSUPPORTED_CONTRACT_CLASS_VERSION = 62


def class_already_declared(class_hash: str) -> RpcError:
    return RpcError(CLASS_ALREADY_DECLARED, "Class already declared", class_hash)


def insufficient_account_balance(detail: str) -> RpcError:
    return RpcError(
        INSUFFICIENT_ACCOUNT_BALANCE,
        "Account balance is smaller than the transaction's maximal fee (calculated as the sum "
        "of each resource's limit x max price)",
        detail,
    )


def compilation_failed(detail: str) -> RpcError:
    return RpcError(COMPILATION_FAILED, "Compilation failed", detail)


def contract_class_size_too_large(detail: str) -> RpcError:
    return RpcError(CONTRACT_CLASS_SIZE_IS_TOO_LARGE, "Contract class size is too large", detail)


def non_account(detail: str) -> RpcError:
    return RpcError(NON_ACCOUNT, "Sender address is not an account contract", detail)


def compiled_class_hash_mismatch(detail: str) -> RpcError:
    return RpcError(
        COMPILED_CLASS_HASH_MISMATCH,
        "the compiled class hash did not match the one supplied in the transaction",
        detail,
    )


def unsupported_contract_class_version(detail: str) -> RpcError:
    return RpcError(
        UNSUPPORTED_CONTRACT_CLASS_VERSION, "the contract class version is not supported", detail
    )


# --- trace, executables, storage proofs ----------------------------------------------

NO_TRACE_AVAILABLE = 10
STORAGE_PROOF_NOT_SUPPORTED = 42
COMPILATION_ERROR = 100


def no_trace_available(status: str) -> RpcError:
    return RpcError(NO_TRACE_AVAILABLE, "No trace available for transaction", {"status": status})


def storage_proof_not_supported() -> RpcError:
    return RpcError(
        STORAGE_PROOF_NOT_SUPPORTED,
        "the node doesn't support storage proofs for blocks that are too far in the past",
    )


def compilation_error(detail: str) -> RpcError:
    return RpcError(
        COMPILATION_ERROR, "Failed to compile the contract", {"compilation_error": detail}
    )


# --- WebSocket API (starknet_ws_api.json) --------------------------------------------

INVALID_SUBSCRIPTION_ID = 66
TOO_MANY_ADDRESSES_IN_FILTER = 67
TOO_MANY_BLOCKS_BACK = 68


def invalid_subscription_id() -> RpcError:
    return RpcError(INVALID_SUBSCRIPTION_ID, "Invalid subscription id")


def too_many_addresses_in_filter(limit: int) -> RpcError:
    return RpcError(
        TOO_MANY_ADDRESSES_IN_FILTER,
        "Too many addresses in filter sender_address filter",
        f"max {limit}",
    )


def too_many_blocks_back() -> RpcError:
    return RpcError(TOO_MANY_BLOCKS_BACK, "Cannot go back more than 1024 blocks")

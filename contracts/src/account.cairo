// Keikochain account: a single Stark-curve key, driven by starknet-py's `Account`.
//
// The protocol calls `__validate__` then `__execute__` with caller address 0; the
// signature is an (r, s) pair over the transaction hash the sequencer computed. The
// interface follows the SNIP-6 / OpenZeppelin account so standard tooling works.

#[starknet::contract]
mod Account {
    use array::{ArrayTrait, SpanTrait};
    use box::BoxTrait;
    use ecdsa::check_ecdsa_signature;
    use option::OptionTrait;
    use starknet::account::Call;
    use starknet::{
        ContractAddress, call_contract_syscall, get_caller_address,
        get_contract_address, get_tx_info
    };
    use zeroable::Zeroable;

    // SNIP-6: the value `__validate__*` and `is_valid_signature` return on success.
    const VALIDATED: felt252 = 'VALID';

    #[storage]
    struct Storage {
        public_key: felt252,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        PublicKeyChanged: PublicKeyChanged,
    }

    #[derive(Drop, starknet::Event)]
    struct PublicKeyChanged {
        old_public_key: felt252,
        new_public_key: felt252,
    }

    #[constructor]
    fn constructor(ref self: ContractState, public_key: felt252) {
        assert(public_key != 0, 'Account: zero public key');
        self.public_key.write(public_key);
    }

    #[external(v0)]
    fn __validate__(self: @ContractState, calls: Array<Call>) -> felt252 {
        validate_transaction(self)
    }

    #[external(v0)]
    fn __validate_declare__(self: @ContractState, class_hash: felt252) -> felt252 {
        validate_transaction(self)
    }

    #[external(v0)]
    fn __validate_deploy__(
        self: @ContractState,
        class_hash: felt252,
        contract_address_salt: felt252,
        public_key: felt252
    ) -> felt252 {
        validate_transaction(self)
    }

    #[external(v0)]
    fn __execute__(ref self: ContractState, calls: Array<Call>) -> Array<Span<felt252>> {
        // Only the protocol (caller 0) may execute: otherwise any contract could make
        // this account act without a signature check.
        let sender = get_caller_address();
        assert(sender.is_zero(), 'Account: invalid caller');
        // Version 0 invokes skip `__validate__` entirely.
        let tx_info = get_tx_info().unbox();
        assert(tx_info.version != 0, 'Account: invalid tx version');
        execute_calls(calls)
    }

    #[external(v0)]
    fn is_valid_signature(
        self: @ContractState, hash: felt252, signature: Array<felt252>
    ) -> felt252 {
        if is_valid_stark_signature(self.public_key.read(), hash, signature.span()) {
            VALIDATED
        } else {
            0
        }
    }

    #[external(v0)]
    fn get_public_key(self: @ContractState) -> felt252 {
        self.public_key.read()
    }

    // Key rotation must itself be a signed transaction of this account, hence the
    // self-call check (the call arrives from `__execute__`).
    #[external(v0)]
    fn set_public_key(ref self: ContractState, new_public_key: felt252) {
        assert(get_caller_address() == get_contract_address(), 'Account: unauthorized');
        assert(new_public_key != 0, 'Account: zero public key');
        let old_public_key = self.public_key.read();
        self.public_key.write(new_public_key);
        self.emit(PublicKeyChanged { old_public_key, new_public_key });
    }

    fn validate_transaction(self: @ContractState) -> felt252 {
        let tx_info = get_tx_info().unbox();
        assert(
            is_valid_stark_signature(
                self.public_key.read(), tx_info.transaction_hash, tx_info.signature
            ),
            'Account: invalid signature'
        );
        VALIDATED
    }

    fn is_valid_stark_signature(
        public_key: felt252, hash: felt252, signature: Span<felt252>
    ) -> bool {
        if signature.len() != 2 {
            return false;
        }
        check_ecdsa_signature(hash, public_key, *signature.at(0), *signature.at(1))
    }

    fn execute_calls(mut calls: Array<Call>) -> Array<Span<felt252>> {
        let mut results = ArrayTrait::new();
        loop {
            match calls.pop_front() {
                Option::Some(call) => {
                    let Call{to, selector, calldata } = call;
                    let result = call_contract_syscall(to, selector, calldata.span())
                        .unwrap_syscall();
                    results.append(result);
                },
                Option::None(()) => {
                    break;
                },
            };
        };
        results
    }
}

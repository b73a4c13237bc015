// Keikochain interaction anchor: puts learning records on chain.
//
// One transaction costs far more than one interaction is worth, so the translator
// batches interactions off-chain into a Poseidon Merkle tree and an operator anchors the
// root with the leaf count, a domain tag and its batch id. A verifier holding a leaf and
// its inclusion proof recomputes the root and checks it here. A learner may also anchor a
// single record hash from their own account, without any operator.
//
// The key directory says whose Ed25519 key signed a leaf. Operators bind each signing key
// (a user's custodial or device key, a Keiko service's key) to its holder's subject, a
// commitment to the holder's id computed off-chain, with the key's custody kind. A key is
// bound once and never to another holder; revoking keeps the binding and records when,
// so older signatures stay attributable. Ed25519 has no Cairo builtin: verifiers check
// signatures off-chain and look the key up here.

#[starknet::contract]
mod InteractionAnchor {
    use array::ArrayTrait;
    use box::BoxTrait;
    use option::OptionTrait;
    use starknet::{ContractAddress, get_block_info, get_caller_address};
    use zeroable::Zeroable;

    const DOMAIN_LEARNING: felt252 = 'learning';
    const DOMAIN_REPUTATION: felt252 = 'reputation';
    const DOMAIN_MARKETPLACE: felt252 = 'marketplace';
    const DOMAIN_GOVERNANCE: felt252 = 'governance';

    // Custody of a directory key: held by Keiko for a user, on the user's device (the
    // humanity-derived key), or a Keiko service's own key.
    const KEY_CUSTODIAL: felt252 = 'custodial';
    const KEY_DEVICE: felt252 = 'device';
    const KEY_SERVICE: felt252 = 'service';

    #[derive(Copy, Drop, Serde, starknet::Store)]
    struct Batch {
        root: felt252,
        leaf_count: u32,
        domain: felt252,
        anchored_by: ContractAddress,
        block_number: u64,
        block_timestamp: u64,
    }

    #[derive(Copy, Drop, Serde, starknet::Store)]
    struct Record {
        learner: ContractAddress,
        block_number: u64,
        block_timestamp: u64,
    }

    // A key's holder; subject 0 means the key is not in the directory.
    #[derive(Copy, Drop, Serde, starknet::Store)]
    struct KeyBinding {
        subject: felt252,
        kind: felt252,
        registered_by: ContractAddress,
        registered_block: u64,
        revoked: bool,
        revoked_block: u64,
    }

    #[derive(Copy, Drop, Serde)]
    struct KeyRegistration {
        key: u256,
        subject: felt252,
        kind: felt252,
    }

    #[storage]
    struct Storage {
        admin: ContractAddress,
        operators: LegacyMap<ContractAddress, bool>,
        batches: LegacyMap<felt252, Batch>,
        // root -> batch id; a root is anchored once.
        root_batch: LegacyMap<felt252, felt252>,
        root_anchored: LegacyMap<felt252, bool>,
        records: LegacyMap<felt252, Record>,
        batches_anchored: u64,
        records_anchored: u64,
        keys: LegacyMap<u256, KeyBinding>,
        keys_registered: u64,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        BatchAnchored: BatchAnchored,
        RecordAnchored: RecordAnchored,
        OperatorAdded: OperatorAdded,
        OperatorRemoved: OperatorRemoved,
        AdminTransferred: AdminTransferred,
        KeyRegistered: KeyRegistered,
        KeyRevoked: KeyRevoked,
    }

    #[derive(Drop, starknet::Event)]
    struct KeyRegistered {
        #[key]
        subject: felt252,
        key: u256,
        kind: felt252,
        operator: ContractAddress,
    }

    #[derive(Drop, starknet::Event)]
    struct KeyRevoked {
        #[key]
        subject: felt252,
        key: u256,
        operator: ContractAddress,
    }

    #[derive(Drop, starknet::Event)]
    struct BatchAnchored {
        #[key]
        batch_id: felt252,
        #[key]
        root: felt252,
        leaf_count: u32,
        domain: felt252,
        operator: ContractAddress,
    }

    #[derive(Drop, starknet::Event)]
    struct RecordAnchored {
        #[key]
        learner: ContractAddress,
        #[key]
        record_hash: felt252,
    }

    #[derive(Drop, starknet::Event)]
    struct OperatorAdded {
        #[key]
        operator: ContractAddress,
    }

    #[derive(Drop, starknet::Event)]
    struct OperatorRemoved {
        #[key]
        operator: ContractAddress,
    }

    #[derive(Drop, starknet::Event)]
    struct AdminTransferred {
        #[key]
        previous_admin: ContractAddress,
        #[key]
        new_admin: ContractAddress,
    }

    #[constructor]
    fn constructor(ref self: ContractState, admin: ContractAddress) {
        assert(!admin.is_zero(), 'zero admin');
        self.admin.write(admin);
    }

    // ------------------------------------------------------------------ admin

    #[external(v0)]
    fn add_operator(ref self: ContractState, operator: ContractAddress) {
        assert_admin(@self);
        assert(!operator.is_zero(), 'zero operator');
        assert(!self.operators.read(operator), 'operator already added');
        self.operators.write(operator, true);
        self.emit(OperatorAdded { operator });
    }

    #[external(v0)]
    fn remove_operator(ref self: ContractState, operator: ContractAddress) {
        assert_admin(@self);
        assert(self.operators.read(operator), 'not an operator');
        self.operators.write(operator, false);
        self.emit(OperatorRemoved { operator });
    }

    #[external(v0)]
    fn transfer_admin(ref self: ContractState, new_admin: ContractAddress) {
        assert_admin(@self);
        assert(!new_admin.is_zero(), 'zero admin');
        let previous_admin = self.admin.read();
        self.admin.write(new_admin);
        self.emit(AdminTransferred { previous_admin, new_admin });
    }

    // ---------------------------------------------------------------- anchors

    #[external(v0)]
    fn anchor_batch(
        ref self: ContractState, batch_id: felt252, root: felt252, leaf_count: u32, domain: felt252
    ) {
        let operator = get_caller_address();
        assert(self.operators.read(operator), 'caller is not operator');
        assert(root != 0, 'empty root');
        assert(leaf_count != 0, 'zero leaf count');
        assert(is_known_domain(domain), 'unknown domain');
        // A stored batch always has a non-zero root, so a zero root means "unused id".
        assert(self.batches.read(batch_id).root == 0, 'batch id already used');
        assert(!self.root_anchored.read(root), 'root already anchored');
        let block = get_block_info().unbox();

        self
            .batches
            .write(
                batch_id,
                Batch {
                    root,
                    leaf_count,
                    domain,
                    anchored_by: operator,
                    block_number: block.block_number,
                    block_timestamp: block.block_timestamp,
                }
            );
        self.root_batch.write(root, batch_id);
        self.root_anchored.write(root, true);
        self.batches_anchored.write(self.batches_anchored.read() + 1);
        self.emit(BatchAnchored { batch_id, root, leaf_count, domain, operator });
    }

    #[external(v0)]
    fn anchor_record(ref self: ContractState, record_hash: felt252) {
        let learner = get_caller_address();
        assert(!learner.is_zero(), 'caller is zero');
        assert(record_hash != 0, 'empty record');
        assert(self.records.read(record_hash).learner.is_zero(), 'record already anchored');
        let block = get_block_info().unbox();
        self
            .records
            .write(
                record_hash,
                Record {
                    learner,
                    block_number: block.block_number,
                    block_timestamp: block.block_timestamp,
                }
            );
        self.records_anchored.write(self.records_anchored.read() + 1);
        self.emit(RecordAnchored { learner, record_hash });
    }

    // ----------------------------------------------------------- key directory

    // Binds each key to its holder. Retrying a binding already made is a no-op, so an
    // operator whose answer was lost may send the same list again.
    #[external(v0)]
    fn register_keys(ref self: ContractState, mut keys: Array<KeyRegistration>) {
        let operator = get_caller_address();
        assert(self.operators.read(operator), 'caller is not operator');
        let block = get_block_info().unbox();
        loop {
            match keys.pop_front() {
                Option::Some(entry) => {
                    register_one(ref self, entry, operator, block.block_number);
                },
                Option::None(()) => {
                    break;
                },
            };
        };
    }

    #[external(v0)]
    fn revoke_key(ref self: ContractState, key: u256) {
        let operator = get_caller_address();
        assert(self.operators.read(operator), 'caller is not operator');
        let binding = self.keys.read(key);
        assert(binding.subject != 0, 'unknown key');
        assert(!binding.revoked, 'key already revoked');
        let block = get_block_info().unbox();
        self
            .keys
            .write(
                key,
                KeyBinding {
                    subject: binding.subject,
                    kind: binding.kind,
                    registered_by: binding.registered_by,
                    registered_block: binding.registered_block,
                    revoked: true,
                    revoked_block: block.block_number,
                }
            );
        self.emit(KeyRevoked { subject: binding.subject, key, operator });
    }

    // ------------------------------------------------------------------ reads

    #[external(v0)]
    fn get_batch(self: @ContractState, batch_id: felt252) -> Batch {
        let batch = self.batches.read(batch_id);
        assert(batch.root != 0, 'unknown batch');
        batch
    }

    #[external(v0)]
    fn is_root_anchored(self: @ContractState, root: felt252) -> bool {
        self.root_anchored.read(root)
    }

    #[external(v0)]
    fn get_batch_id_by_root(self: @ContractState, root: felt252) -> felt252 {
        assert(self.root_anchored.read(root), 'unknown root');
        self.root_batch.read(root)
    }

    #[external(v0)]
    fn get_record(self: @ContractState, record_hash: felt252) -> Record {
        let record = self.records.read(record_hash);
        assert(!record.learner.is_zero(), 'unknown record');
        record
    }

    #[external(v0)]
    fn is_record_anchored(self: @ContractState, record_hash: felt252) -> bool {
        !self.records.read(record_hash).learner.is_zero()
    }

    #[external(v0)]
    fn batch_count(self: @ContractState) -> u64 {
        self.batches_anchored.read()
    }

    #[external(v0)]
    fn record_count(self: @ContractState) -> u64 {
        self.records_anchored.read()
    }

    // subject 0: the key is not in the directory.
    #[external(v0)]
    fn get_key(self: @ContractState, key: u256) -> KeyBinding {
        self.keys.read(key)
    }

    #[external(v0)]
    fn key_count(self: @ContractState) -> u64 {
        self.keys_registered.read()
    }

    #[external(v0)]
    fn is_operator(self: @ContractState, account: ContractAddress) -> bool {
        self.operators.read(account)
    }

    #[external(v0)]
    fn get_admin(self: @ContractState) -> ContractAddress {
        self.admin.read()
    }

    // --------------------------------------------------------------- internal

    fn assert_admin(self: @ContractState) {
        assert(get_caller_address() == self.admin.read(), 'caller is not admin');
    }

    fn register_one(
        ref self: ContractState,
        entry: KeyRegistration,
        operator: ContractAddress,
        block_number: u64
    ) {
        assert(entry.key != 0, 'zero key');
        assert(entry.subject != 0, 'zero subject');
        assert(
            entry.kind == KEY_CUSTODIAL || entry.kind == KEY_DEVICE || entry.kind == KEY_SERVICE,
            'unknown key kind'
        );
        let existing = self.keys.read(entry.key);
        if existing.subject == 0 {
            self
                .keys
                .write(
                    entry.key,
                    KeyBinding {
                        subject: entry.subject,
                        kind: entry.kind,
                        registered_by: operator,
                        registered_block: block_number,
                        revoked: false,
                        revoked_block: 0,
                    }
                );
            self.keys_registered.write(self.keys_registered.read() + 1);
            self
                .emit(
                    KeyRegistered {
                        subject: entry.subject, key: entry.key, kind: entry.kind, operator
                    }
                );
        } else {
            assert(existing.subject == entry.subject, 'key bound to another holder');
            assert(existing.kind == entry.kind, 'key bound with another kind');
        }
    }

    fn is_known_domain(domain: felt252) -> bool {
        domain == DOMAIN_LEARNING
            || domain == DOMAIN_REPUTATION
            || domain == DOMAIN_MARKETPLACE
            || domain == DOMAIN_GOVERNANCE
    }
}

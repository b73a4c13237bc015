// Keikochain interaction anchor: puts learning records on chain.
//
// One transaction costs far more than one interaction is worth, so the translator
// batches interactions off-chain into a Poseidon Merkle tree and an operator anchors the
// root with the leaf count, a domain tag and its batch id. A verifier holding a leaf and
// its inclusion proof recomputes the root and checks it here. A learner may also anchor a
// single record hash from their own account, without any operator.

#[starknet::contract]
mod InteractionAnchor {
    use box::BoxTrait;
    use starknet::{ContractAddress, get_block_info, get_caller_address};
    use zeroable::Zeroable;

    const DOMAIN_LEARNING: felt252 = 'learning';
    const DOMAIN_REPUTATION: felt252 = 'reputation';
    const DOMAIN_MARKETPLACE: felt252 = 'marketplace';
    const DOMAIN_GOVERNANCE: felt252 = 'governance';

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
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        BatchAnchored: BatchAnchored,
        RecordAnchored: RecordAnchored,
        OperatorAdded: OperatorAdded,
        OperatorRemoved: OperatorRemoved,
        AdminTransferred: AdminTransferred,
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

    fn is_known_domain(domain: felt252) -> bool {
        domain == DOMAIN_LEARNING
            || domain == DOMAIN_REPUTATION
            || domain == DOMAIN_MARKETPLACE
            || domain == DOMAIN_GOVERNANCE
    }
}

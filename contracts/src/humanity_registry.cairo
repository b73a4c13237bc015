// Keikochain humanity registry: one registration per human.
//
// An account registers the commitment to its holder's humanity proof key (derived
// off-chain from iris and genome captures by a fuzzy extractor; raw biometrics never
// leave the identity service) together with the learner's Ed25519 public key. A
// commitment can be registered once, and an account can register once, so one human
// holds one registered account. Ed25519 has no Cairo builtin: the chain stores the key
// and anyone verifies signatures off-chain against it.

#[starknet::contract]
mod HumanityRegistry {
    use starknet::{ContractAddress, get_caller_address};
    use zeroable::Zeroable;

    #[storage]
    struct Storage {
        // account -> commitment (0: not registered)
        commitment_of: LegacyMap<ContractAddress, felt252>,
        // commitment -> account (0: unused)
        account_of: LegacyMap<felt252, ContractAddress>,
        // account -> current Ed25519 public key (0: revoked)
        key_of: LegacyMap<ContractAddress, u256>,
        // Ed25519 key -> account that ever held it; a key is never reused.
        key_holder: LegacyMap<u256, ContractAddress>,
        humans: u64,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        Registered: Registered,
        KeyRotated: KeyRotated,
        KeyRevoked: KeyRevoked,
    }

    #[derive(Drop, starknet::Event)]
    struct Registered {
        #[key]
        account: ContractAddress,
        #[key]
        commitment: felt252,
        ed25519_pubkey: u256,
    }

    #[derive(Drop, starknet::Event)]
    struct KeyRotated {
        #[key]
        account: ContractAddress,
        old_key: u256,
        new_key: u256,
    }

    #[derive(Drop, starknet::Event)]
    struct KeyRevoked {
        #[key]
        account: ContractAddress,
        old_key: u256,
    }

    #[external(v0)]
    fn register(ref self: ContractState, commitment: felt252, ed25519_pubkey: u256) {
        let account = get_caller_address();
        assert(!account.is_zero(), 'caller is zero');
        assert(commitment != 0, 'zero commitment');
        assert(ed25519_pubkey != 0, 'zero key');
        assert(self.commitment_of.read(account) == 0, 'account already registered');
        assert(self.account_of.read(commitment).is_zero(), 'commitment already used');
        assert(self.key_holder.read(ed25519_pubkey).is_zero(), 'key already used');

        self.commitment_of.write(account, commitment);
        self.account_of.write(commitment, account);
        self.key_of.write(account, ed25519_pubkey);
        self.key_holder.write(ed25519_pubkey, account);
        self.humans.write(self.humans.read() + 1);
        self.emit(Registered { account, commitment, ed25519_pubkey });
    }

    // Also the way back from a revocation: the owner installs a fresh key.
    #[external(v0)]
    fn rotate_key(ref self: ContractState, new_key: u256) {
        let account = get_caller_address();
        assert(self.commitment_of.read(account) != 0, 'not registered');
        assert(new_key != 0, 'zero key');
        assert(self.key_holder.read(new_key).is_zero(), 'key already used');
        let old_key = self.key_of.read(account);
        self.key_of.write(account, new_key);
        self.key_holder.write(new_key, account);
        self.emit(KeyRotated { account, old_key, new_key });
    }

    // The account stays registered (the human is still a human); only signatures by the
    // revoked key stop being valid.
    #[external(v0)]
    fn revoke_key(ref self: ContractState) {
        let account = get_caller_address();
        assert(self.commitment_of.read(account) != 0, 'not registered');
        let old_key = self.key_of.read(account);
        assert(old_key != 0, 'key already revoked');
        self.key_of.write(account, 0);
        self.emit(KeyRevoked { account, old_key });
    }

    #[external(v0)]
    fn is_human(self: @ContractState, account: ContractAddress) -> bool {
        self.commitment_of.read(account) != 0
    }

    // 0 when the account is unregistered or its key is revoked.
    #[external(v0)]
    fn get_key(self: @ContractState, account: ContractAddress) -> u256 {
        self.key_of.read(account)
    }

    #[external(v0)]
    fn get_commitment(self: @ContractState, account: ContractAddress) -> felt252 {
        self.commitment_of.read(account)
    }

    // The zero address when the commitment is unused.
    #[external(v0)]
    fn get_account_by_commitment(self: @ContractState, commitment: felt252) -> ContractAddress {
        self.account_of.read(commitment)
    }

    #[external(v0)]
    fn human_count(self: @ContractState) -> u64 {
        self.humans.read()
    }
}

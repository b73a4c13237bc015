// Keikochain fee token: the ERC20 in which transactions pay their fees (STRK, in fri; a
// second instance holds ETH, in wei, for tools that ask for it).
//
// Standard ERC20 (snake_case and camelCase entry points, as Starknet tooling calls both)
// plus `permissioned_mint`, callable by the minter only: the dev node's own account mints
// with it (`devnet_mint`), as starknet-devnet does. The sequencer charges a transaction's
// fee by calling `transfer` from the paying account to the sequencer address.

#[starknet::contract]
mod FeeToken {
    use integer::BoundedInt;
    use starknet::{ContractAddress, get_caller_address};
    use zeroable::Zeroable;

    #[storage]
    struct Storage {
        token_name: felt252,
        token_symbol: felt252,
        token_decimals: u8,
        supply: u256,
        balances: LegacyMap<ContractAddress, u256>,
        allowances: LegacyMap<(ContractAddress, ContractAddress), u256>,
        minter: ContractAddress,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        Transfer: Transfer,
        Approval: Approval,
    }

    #[derive(Drop, starknet::Event)]
    struct Transfer {
        #[key]
        from: ContractAddress,
        #[key]
        to: ContractAddress,
        value: u256,
    }

    #[derive(Drop, starknet::Event)]
    struct Approval {
        #[key]
        owner: ContractAddress,
        #[key]
        spender: ContractAddress,
        value: u256,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState, name: felt252, symbol: felt252, decimals: u8, minter: ContractAddress
    ) {
        assert(!minter.is_zero(), 'ERC20: zero minter');
        self.token_name.write(name);
        self.token_symbol.write(symbol);
        self.token_decimals.write(decimals);
        self.minter.write(minter);
    }

    #[external(v0)]
    fn name(self: @ContractState) -> felt252 {
        self.token_name.read()
    }

    #[external(v0)]
    fn symbol(self: @ContractState) -> felt252 {
        self.token_symbol.read()
    }

    #[external(v0)]
    fn decimals(self: @ContractState) -> u8 {
        self.token_decimals.read()
    }

    #[external(v0)]
    fn total_supply(self: @ContractState) -> u256 {
        self.supply.read()
    }

    #[external(v0)]
    fn totalSupply(self: @ContractState) -> u256 {
        self.supply.read()
    }

    #[external(v0)]
    fn balance_of(self: @ContractState, account: ContractAddress) -> u256 {
        self.balances.read(account)
    }

    #[external(v0)]
    fn balanceOf(self: @ContractState, account: ContractAddress) -> u256 {
        self.balances.read(account)
    }

    #[external(v0)]
    fn allowance(self: @ContractState, owner: ContractAddress, spender: ContractAddress) -> u256 {
        self.allowances.read((owner, spender))
    }

    #[external(v0)]
    fn transfer(ref self: ContractState, recipient: ContractAddress, amount: u256) -> bool {
        let sender = get_caller_address();
        move_tokens(ref self, sender, recipient, amount);
        true
    }

    #[external(v0)]
    fn transfer_from(
        ref self: ContractState, sender: ContractAddress, recipient: ContractAddress, amount: u256
    ) -> bool {
        spend_allowance(ref self, sender, get_caller_address(), amount);
        move_tokens(ref self, sender, recipient, amount);
        true
    }

    #[external(v0)]
    fn transferFrom(
        ref self: ContractState, sender: ContractAddress, recipient: ContractAddress, amount: u256
    ) -> bool {
        spend_allowance(ref self, sender, get_caller_address(), amount);
        move_tokens(ref self, sender, recipient, amount);
        true
    }

    #[external(v0)]
    fn approve(ref self: ContractState, spender: ContractAddress, amount: u256) -> bool {
        let owner = get_caller_address();
        assert(!owner.is_zero(), 'ERC20: approve from 0');
        assert(!spender.is_zero(), 'ERC20: approve to 0');
        self.allowances.write((owner, spender), amount);
        self.emit(Approval { owner, spender, value: amount });
        true
    }

    #[external(v0)]
    fn permissioned_mint(ref self: ContractState, account: ContractAddress, amount: u256) {
        assert(get_caller_address() == self.minter.read(), 'ERC20: only the minter');
        assert(!account.is_zero(), 'ERC20: mint to 0');
        self.supply.write(self.supply.read() + amount);
        self.balances.write(account, self.balances.read(account) + amount);
        self.emit(Transfer { from: Zeroable::zero(), to: account, value: amount });
    }

    #[external(v0)]
    fn get_minter(self: @ContractState) -> ContractAddress {
        self.minter.read()
    }

    fn move_tokens(
        ref self: ContractState, sender: ContractAddress, recipient: ContractAddress, amount: u256
    ) {
        assert(!sender.is_zero(), 'ERC20: transfer from 0');
        assert(!recipient.is_zero(), 'ERC20: transfer to 0');
        let balance = self.balances.read(sender);
        assert(balance >= amount, 'ERC20: insufficient balance');
        self.balances.write(sender, balance - amount);
        self.balances.write(recipient, self.balances.read(recipient) + amount);
        self.emit(Transfer { from: sender, to: recipient, value: amount });
    }

    fn spend_allowance(
        ref self: ContractState, owner: ContractAddress, spender: ContractAddress, amount: u256
    ) {
        let current = self.allowances.read((owner, spender));
        if current == BoundedInt::max() {
            return;
        }
        assert(current >= amount, 'ERC20: insufficient allowance');
        self.allowances.write((owner, spender), current - amount);
    }
}

// Keikochain Universal Deployer Contract: deploys any declared class from an ordinary
// INVOKE, at the address where Starknet's UDC places it (the interface starknet-py's
// `Deployer` and other tools call).
//
// `unique`: the salt is hashed with the caller's address (Pedersen), and the deployer is
// this contract, so two callers never collide; otherwise the address depends on the class,
// salt and calldata alone (deployed "from zero"), identical on every chain.

#[starknet::contract]
mod UniversalDeployer {
    use array::{ArrayTrait, SpanTrait};
    use hash::LegacyHash;
    use starknet::{
        ClassHash, ContractAddress, contract_address_to_felt252, deploy_syscall, get_caller_address
    };

    #[storage]
    struct Storage {}

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        ContractDeployed: ContractDeployed,
    }

    #[derive(Drop, starknet::Event)]
    struct ContractDeployed {
        address: ContractAddress,
        deployer: ContractAddress,
        unique: bool,
        classHash: ClassHash,
        calldata: Span<felt252>,
        salt: felt252,
    }

    #[external(v0)]
    fn deployContract(
        ref self: ContractState,
        classHash: ClassHash,
        salt: felt252,
        unique: bool,
        calldata: Span<felt252>
    ) -> ContractAddress {
        let deployer = get_caller_address();
        let mut deploy_salt = salt;
        if unique {
            deploy_salt = LegacyHash::hash(contract_address_to_felt252(deployer), salt);
        }
        let (address, _) = deploy_syscall(classHash, deploy_salt, calldata, !unique)
            .unwrap_syscall();
        self.emit(ContractDeployed { address, deployer, unique, classHash, calldata, salt });
        address
    }
}

module weft.example/peers

go 1.19

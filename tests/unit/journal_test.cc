// placeholder until the journal tests land

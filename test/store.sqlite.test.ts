import { createSqliteStore } from '../src/store/sqlite/index.js'
import { describeStoreContract } from './contract/store-contract.js'
import { tempSqlitePath } from './helpers/sqlite.js'

describeStoreContract('sqlite (a real file)', async () => {
  const path = tempSqlitePath()
  return { store: createSqliteStore({ url: path }), openAnother: async () => createSqliteStore({ url: path }) }
})

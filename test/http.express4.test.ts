import express from 'express4'
import { describeHttpBehaviour } from './contract/http-behaviour.js'
import { expressBehaviourApp } from './helpers/express-behaviour-app.js'
import { listenNode } from './helpers/listen-node.js'

describeHttpBehaviour('Express 4', async (setup) => listenNode(expressBehaviourApp(express, setup, false)))
describeHttpBehaviour('Express 4 behind express.json()', async (setup) => listenNode(expressBehaviourApp(express, setup, true)), {
  hostParsesJson: true,
})
